package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLocalProtectedGateRefused: in a local run, --yes approved the
// operator's own Go/No-Go gate in production, and an approvers=2 gate
// could never be met (fault: a decision on one's own word in a protected
// environment). A local run there refuses to start and says how; nothing
// runs. In an unprotected environment the run starts as before.
func TestLocalProtectedGateRefused(t *testing.T) {
	ws := t.TempDir()
	writeFile(t, filepath.Join(ws, "opsbook.yaml"), "name: t\nlang: en\nenvironments:\n  - name: dev\n  - name: production\n    protected: true\n    reviewers: 0\n    rehearsal: false\n")
	marker := filepath.Join(t.TempDir(), "ran")
	writeFile(t, filepath.Join(ws, "ops", "runbooks", "gated.md"), "---\nkind: runbook\ntitle: Gated\nparams:\n  MARKER: {type: string, required: true}\n---\n\n# Gated\n\n## Steps\n\n### Touch\n\n```sh {id=touch}\ntouch \"$MARKER\"\n```\n\n### Decide\n\n```gate {id=go approvers=2}\nGo when ready.\n```\n")
	t.Setenv("OPSBOOK_SERVER", "")
	for _, args := range [][]string{
		{"run", "ops/runbooks/gated.md", "--env", "production", "--yes", "-p", "MARKER=" + marker},
		{"run", "ops/runbooks/gated.md", "--env", "production", "-p", "MARKER=" + marker},
	} {
		code, _, stderr := runCLI(t, ws, args...)
		if code != ExitRefused || !strings.Contains(stderr, "protected") || !strings.Contains(stderr, "OPSBOOK_SERVER") {
			t.Errorf("%v: exit %d, want %d saying to run through the server\n%s", args, code, ExitRefused, stderr)
		}
		if _, err := os.Stat(marker); err == nil {
			t.Fatalf("%v: a step ran before the refusal", args)
		}
	}
	// Unprotected: the run starts, --yes gives one of the two approvals and
	// the gate waits for the second person (the test stops waiting).
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := Main(ctx, []string{"run", "ops/runbooks/gated.md", "--env", "dev", "--yes", "-p", "MARKER=" + marker}, strings.NewReader(""), &stdout, &stderr)
	if _, err := os.Stat(marker); code != ExitInterrupted || err != nil || !strings.Contains(stderr.String(), "has your approval and needs 2 distinct approvers") {
		t.Errorf("dev --yes: exit %d, step ran: %v\n%s%s", code, err == nil, stdout.String(), stderr.String())
	}
}
