package api_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opsbook/opsbook/internal/server"
	"github.com/opsbook/opsbook/internal/store"
)

// TestRunWithoutStepsIsRefused: a published runbook whose blocks sit
// under no step heading (here its steps section is misspelt) runs nothing;
// starting it answers 400 naming the cause, and no run is recorded.
// Fault class: a run that reports success for work it never did.
func TestRunWithoutStepsIsRefused(t *testing.T) {
	ws := attackWorkspace(t)
	const rb = "ops/runbooks/alpha-nosteps.md"
	doc := "---\nkind: runbook\ntitle: No steps\n---\n\n# No steps\n\n## Stepz\n\n### Drop\n\n```bash {id=drop}\necho dropped\n```\n"
	if err := os.WriteFile(filepath.Join(ws, rb), []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	h := newHarnessWith(t, filepath.Join(t.TempDir(), "server.db"), func(c *server.Config) { c.Workspace = ws })
	h.must(http.StatusCreated, admin, "POST", "/api/v1/snapshots", map[string]string{"runbook": rb})
	r := h.do(runner, "POST", "/api/v1/runs", map[string]any{"runbook": rb, "environment": "dev"})
	if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "has no steps") || !strings.Contains(string(r.body), "invalid_runbook") {
		t.Fatalf("start of a runbook without steps: status %d, want 400 invalid_runbook naming the cause\n%s", r.status, r.body)
	}
	runs, err := h.st.ListRuns(context.Background(), store.RunFilter{Runbook: rb})
	if err != nil || len(runs) != 0 {
		t.Fatalf("the refused start recorded %d runs (%v)", len(runs), err)
	}
}
