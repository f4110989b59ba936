package api_test

import (
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/server"
)

// TestRollbackDocumentOnServer: a rollback document is listed with the
// runbooks and runs on its own on the server, as `opsbook run` runs it —
// before, GET and POST named it 404.
func TestRollbackDocumentOnServer(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"opsbook.yaml": "name: rb\nenvironments:\n  - name: staging\n",
		"ops/runbooks/change.md": "---\nkind: runbook\ntitle: Change\nrollback: change-rollback.md\n---\n\n## Steps\n\n" +
			"### Change\n\n```sh {id=change verify=none reason=test}\necho changed\n```\n",
		"ops/runbooks/change-rollback.md": "---\nkind: rollback\ntitle: Undo change\n---\n\n## Rollback steps\n\n" +
			"### Restore\n\n```sh {id=restore verify=none reason=test}\necho restored\n```\n",
		"ops/runbooks/notes.md": "---\nkind: checklist\ntitle: Notes\n---\n\n# Notes\n",
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h := newHarnessWith(t, filepath.Join(t.TempDir(), "server.db"), func(c *server.Config) { c.Workspace = dir })
	var list struct {
		Items []struct {
			Path string `json:"path"`
		} `json:"items"`
	}
	h.must(http.StatusOK, admin, "GET", "/api/v1/runbooks", nil).json(t, &list)
	var paths []string
	for _, it := range list.Items {
		paths = append(paths, it.Path)
	}
	if !slices.Contains(paths, "ops/runbooks/change-rollback.md") || slices.Contains(paths, "ops/runbooks/notes.md") {
		t.Fatalf("runbooks listed: %v, want the rollback document and not the checklist", paths)
	}
	h.must(http.StatusOK, admin, "GET", "/api/v1/runbooks/ops/runbooks/change-rollback.md", nil)
	var run runbook.Run
	h.must(http.StatusCreated, admin, "POST", "/api/v1/runs", map[string]any{"runbook": "ops/runbooks/change-rollback.md", "environment": "staging", "snapshot": "current"}).json(t, &run)
	d := h.waitRun(run.ID, "finished", finished)
	if d.Status != runbook.RunSucceeded {
		t.Fatalf("rollback document's run ended %s", d.Status)
	}
	if len(d.State.Steps) != 1 || d.State.Steps[0].ID != "restore" {
		t.Fatalf("steps run: %+v", d.State.Steps)
	}
}
