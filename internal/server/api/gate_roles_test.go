package api_test

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/server"
)

// TestGateRolesInRollbackPlan: a gate's roles= holds wherever the gate is —
// here in the rollback plan a failed step starts. An approver outside the
// named team is refused; a member of it decides.
func TestGateRolesInRollbackPlan(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"opsbook.yaml": "name: roles\nenvironments:\n  - name: staging\n",
		"ops/runbooks/risky.md": "---\nkind: runbook\ntitle: Risky\nrollback: risky-rollback.md\n---\n\n## Steps\n\n" +
			"### Break\n\n```sh {id=break on_fail=rollback verify=none reason=test}\nexit 1\n```\n",
		"ops/runbooks/risky-rollback.md": "---\nkind: rollback\ntitle: Undo risky\n---\n\n## Rollback steps\n\n" +
			"### Go/No-Go: restore\n\n```gate {id=go-restore roles=" + approver + "}\nGo when the DBA agrees.\n```\n\n" +
			"### Restore\n\n```sh {id=restore verify=none reason=test}\necho restored\n```\n",
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
	var run runbook.Run
	h.must(http.StatusCreated, admin, "POST", "/api/v1/runs", map[string]any{"runbook": "ops/runbooks/risky.md", "environment": "staging", "snapshot": "current"}).json(t, &run)
	d := h.waitRun(run.ID, "at the rollback gate", waitingFor(runbook.WaitKindGate))
	if got := d.State.Waiting.Roles; len(got) != 1 || got[0] != approver {
		t.Fatalf("the waiting gate carries roles %v, want [%s]", got, approver)
	}
	outsider := h.login(h.user("other-approver", auth.RunbookView, auth.RunbookApprove))
	if r := h.doWith(outsider, "POST", "/api/v1/runs/"+run.ID+"/gate", map[string]string{"decision": "go", "reason": "looks fine"}); r.status != http.StatusForbidden {
		t.Fatalf("an approver outside roles=%s: %d %s, want 403", approver, r.status, r.body)
	}
	h.must(http.StatusOK, approver, "POST", "/api/v1/runs/"+run.ID+"/gate", map[string]string{"decision": "go", "reason": "DBA agrees"})
	if d := h.waitRun(run.ID, "finished", finished); d.Status != runbook.RunRolledBack {
		t.Fatalf("run ended %s, want rolled_back", d.Status)
	}
}
