package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInitNewListArchive is the quick start: a fresh directory, init, new,
// lint, list, archive.
func TestInitNewListArchive(t *testing.T) {
	dir := t.TempDir()
	code, out, errOut := runCLI(t, dir, "init")
	if code != ExitOK || !strings.Contains(out, "created  opsbook.yaml") {
		t.Fatalf("init = %d\n%s%s", code, out, errOut)
	}
	code, out, _ = runCLI(t, "", "init")
	if code != ExitOK || !strings.Contains(out, "nothing to do") {
		t.Errorf("second init = %d\n%s", code, out)
	}

	code, out, errOut = runCLI(t, "", "new", "database migration from PostgreSQL 12 to 15", "--date", "2025-03-01")
	task := "2025-03-01-postgres-upgrade-v12-to-v15"
	if code != ExitOK || !strings.Contains(out, "created task "+task) || !strings.Contains(out, `library runbook "postgres-major-upgrade"`) {
		t.Fatalf("new = %d\n%s%s", code, out, errOut)
	}
	for _, f := range []string{"-runbook.md", "-rollback.md", "-checklist.md", "-postmortem-template.md"} {
		if _, err := os.Stat(filepath.Join(dir, "ops/active", task, task+f)); err != nil {
			t.Error(err)
		}
	}
	if code, out, _ = runCLI(t, "", "lint", "ops"); code != ExitOK {
		t.Errorf("lint of the new task = %d\n%s", code, out)
	}

	code, _, errOut = runCLI(t, "", "new", "database migration from PostgreSQL 12 to 15", "--date", "2025-03-01")
	if code != ExitBadInput || !strings.Contains(errOut, "already exists") {
		t.Errorf("repeated new = %d %s", code, errOut)
	}
	// A description never fails: what cannot be derived is chosen and said.
	code, out, errOut = runCLI(t, "", "new", "fail over orders-db to the DR site", "--date", "2025-03-01", "--dry-run")
	if code != ExitOK || !strings.Contains(out, "task 2025-03-01-orders-db-failover-to-dr") ||
		!strings.Contains(out, `chosen: system "orders-db" is the most specific name in the description; pass --system to choose another`) {
		t.Errorf("new without a known system = %d\n%s%s", code, out, errOut)
	}

	code, out, _ = runCLI(t, "", "new", "Redis 集群扩容", "--lang", "zh", "--date", "2025-03-02", "--dry-run", "-o", "json")
	var res struct {
		Task    string `json:"task"`
		Library string `json:"library"`
		DryRun  bool   `json:"dry_run"`
	}
	if code != ExitOK || json.Unmarshal([]byte(out), &res) != nil || res.Task != "2025-03-02-redis-scale-out-cluster" || res.Library != "generic" || !res.DryRun {
		t.Errorf("dry run json = %d %s", code, out)
	}

	code, out, _ = runCLI(t, "", "list")
	if code != ExitOK || !strings.Contains(out, task) || !strings.Contains(out, "planning") {
		t.Errorf("list = %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, "", "list", "-o", "json")
	var tasks []map[string]any
	if code != ExitOK || json.Unmarshal([]byte(out), &tasks) != nil || len(tasks) != 1 {
		t.Errorf("list json = %d %s", code, out)
	}

	code, _, errOut = runCLI(t, "", "archive", task, "--no-git")
	if code != ExitFailed || !strings.Contains(errOut, "not completed") {
		t.Errorf("archive of an open task = %d %s", code, errOut)
	}
	code, out, _ = runCLI(t, "", "archive", task, "--force", "--no-git")
	if code != ExitOK || !strings.Contains(out, "archived "+task+" → ops/archive/") {
		t.Errorf("forced archive = %d %s", code, out)
	}
	code, out, _ = runCLI(t, "", "list", "--archived")
	if code != ExitOK || !strings.Contains(out, task) || !strings.Contains(out, "archived") {
		t.Errorf("list --archived = %d\n%s", code, out)
	}
	code, _, errOut = runCLI(t, "", "archive")
	if code != ExitBadInput || !strings.Contains(errOut, "--due") {
		t.Errorf("archive without a task = %d %s", code, errOut)
	}
}

func TestNewOutsideWorkspace(t *testing.T) {
	code, _, errOut := runCLI(t, t.TempDir(), "new", "redis upgrade to 7.2")
	if code != ExitBadInput || !strings.Contains(errOut, "opsbook init") {
		t.Errorf("new outside a workspace = %d %s", code, errOut)
	}
}
