package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/store"
)

// Fault class: a documented command line that does not parse. status and
// docs/lifecycle.md tell people to type --emergency --reason "…", and run
// had no --reason; resume --answer refused rollback.
func TestEmergencyReasonAndAnswerRollback(t *testing.T) {
	dir := t.TempDir()
	doc := "---\nkind: runbook\ntitle: Fire\nchange: emergency\n---\n\n# Fire\n\n## Steps\n\n### Put it out\n\n```sh {id=out}\necho out\n```\n\n### Go\n\n```gate\nGo?\n```\n"
	must(t, os.WriteFile(filepath.Join(dir, "opsbook.yaml"), []byte("name: fire\nenvironments:\n  - name: dev\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "fire.md"), []byte(doc), 0o644))
	cli := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := Main(context.Background(), append([]string{"-C", dir}, args...), strings.NewReader(""), &out, &errb)
		return code, out.String() + errb.String()
	}
	for _, tt := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"--emergency --reason", []string{"--emergency", "--reason", "cache is on fire"}, ExitOK, ""},
		{"older --emergency=reason", []string{"--emergency=disk is full"}, ExitOK, ""},
		{"--emergency without a reason", []string{"--emergency"}, ExitBadInput, "--emergency needs a reason"},
		{"--reason without --emergency", []string{"--reason", "why"}, ExitBadInput, "add --emergency"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out := cli(append([]string{"run", filepath.Join(dir, "fire.md"), "--env", "dev", "--yes"}, tt.args...)...)
			if code != tt.code || !strings.Contains(out, tt.want) {
				t.Fatalf("exit %d, want %d with %q:\n%s", code, tt.code, tt.want, out)
			}
		})
	}
	_, st, err := openWorkspaceState(context.Background(), &env{workspace: dir, stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}})
	if err != nil {
		t.Fatal(err)
	}
	runs, err := st.ListRuns(context.Background(), store.RunFilter{})
	st.Close()
	if err != nil || len(runs) != 2 {
		t.Fatalf("runs %v %v", runs, err)
	}
	reasons := map[string]bool{}
	for _, r := range runs {
		reasons[r.Emergency] = r.Status == runbook.RunSucceeded
	}
	if !reasons["cache is on fire"] || !reasons["disk is full"] {
		t.Fatalf("emergency reasons recorded: %v", reasons)
	}

	if code, out := cli("resume", "01NOSUCHRUN", "--answer", "rollback"); strings.Contains(out, "--answer must be") {
		t.Fatalf("resume --answer rollback refused (exit %d): %s", code, out)
	}
}
