package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRunRefusesReferencesOutsideWorkspace: faults — a runbook whose
// rollback: or call climbs out of the workspace, names /dev/zero, or names
// itself. The run is refused before anything executes, with the place of
// the reference; the outside document is never run.
func TestRunRefusesReferencesOutsideWorkspace(t *testing.T) {
	doc := func(front, steps string) string {
		return "---\nkind: runbook\ntitle: refs\n" + front + "---\n\n# refs\n\n## Steps\n\n" + steps
	}
	step := "### Touch\n\n```sh {verify=none reason=marker}\ntouch ran\n```\n\n"
	outsideRollback := "---\nkind: rollback\ntitle: outside\n---\n\n## Rollback steps\n\n### Escape\n\n```sh {verify=none reason=r}\ntouch escaped\n```\n"
	tests := []struct {
		name, front, steps, want string
	}{
		{"rollback outside the workspace", "rollback: ../../../outside.md\n", step,
			"main.md:4:1: error: rollback: ../../../outside.md leads outside the workspace"},
		{"rollback on a device", "rollback: /dev/zero\n", step,
			"main.md:4:1: error: rollback: /dev/zero is an absolute path"},
		{"call outside the workspace", "", step + "### Call\n\n```call {runbook=../../../outside.md}\n```\n\n",
			"main.md:18:1: error: call: ../../../outside.md leads outside the workspace"},
		{"call of itself", "", "### Call\n\n```call {runbook=main.md}\n```\n\n",
			"main.md:12:1: error: call: main.md is this document itself"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			top := t.TempDir()
			writeFile(t, filepath.Join(top, "outside.md"), outsideRollback)
			dir := filepath.Join(top, "ws")
			writeFile(t, filepath.Join(dir, "opsbook.yaml"), "name: refs\nenvironments:\n  - name: dev\n")
			writeFile(t, filepath.Join(dir, "ops/runbooks/main.md"), doc(tt.front, tt.steps))
			code, stdout, stderr := runCLI(t, dir, "run", "ops/runbooks/main.md", "--env", "dev", "--yes")
			if code == 0 || !strings.Contains(stderr, tt.want) {
				t.Errorf("run: exit %d, stderr:\n%s\nstdout:\n%s\nwant an error containing %q", code, stderr, stdout, tt.want)
			}
			for _, f := range []string{filepath.Join(dir, "ran"), filepath.Join(dir, "ops/runbooks/ran"), filepath.Join(top, "escaped")} {
				if _, err := os.Stat(f); err == nil {
					t.Errorf("%s exists: something ran", f)
				}
			}
		})
	}
}
