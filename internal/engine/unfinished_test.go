package engine

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/opsbook/opsbook/internal/store"
)

// TestUnfinishedRunbookRefused: a skeleton with <<FILL: …>> placeholders
// (what `opsbook new` writes when it has no library runbook) is refused
// before anything is recorded or executed, naming every placeholder.
func TestUnfinishedRunbookRefused(t *testing.T) {
	h := newHarness(t)
	d := h.doc("skeleton.md", "", step("Stop writes", "sh {id=stop verify=none reason=r}", `echo ran >> "$OPSBOOK_WORKSPACE/ran"
# <<FILL: the command that stops writes>>`))
	_, err := h.eng.Start(context.Background(), h.plan(d, nil), StartOptions{Actor: "t"})
	var ue *UnfinishedError
	if !errors.As(err, &ue) {
		t.Fatalf("Start of an unfinished runbook: %v, want *UnfinishedError", err)
	}
	if len(ue.Places) != 1 || !strings.Contains(ue.Places[0], "skeleton.md:") || !strings.Contains(err.Error(), "the command that stops writes") {
		t.Fatalf("error does not name the placeholder: %v", err)
	}
	if runs, err := h.st.ListRuns(context.Background(), store.RunFilter{}); err != nil || len(runs) != 0 {
		t.Fatalf("a refused plan left runs %v (%v)", runs, err)
	}
	if _, err := os.Stat(h.dir + "/ran"); err == nil {
		t.Fatal("the unfinished step ran")
	}

	done := h.doc("finished.md", "", step("Stop writes", "sh {id=stop verify=none reason=r}", "true"))
	if _, err := h.eng.Start(context.Background(), h.plan(done, nil), StartOptions{Actor: "t"}); err != nil {
		t.Fatalf("a finished runbook is refused: %v", err)
	}
}
