package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestShowTitlesAndChangedDocument: show names steps by their titles from
// the runbook as it is in the workspace, and says when that document is
// not the one the run executed.
func TestShowTitlesAndChangedDocument(t *testing.T) {
	dir := t.TempDir()
	doc := "---\nkind: runbook\ntitle: Two steps\n---\n\n# Two steps\n\n## Steps\n\n### Say hello\n\n```sh {id=hello}\necho hello\n```\n\n### Say goodbye\n\n```sh {id=bye}\necho bye\n```\n"
	must(t, os.WriteFile(filepath.Join(dir, "opsbook.yaml"), []byte("name: show\nenvironments:\n  - name: dev\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "two.md"), []byte(doc), 0o644))
	cli := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if code := Main(context.Background(), append([]string{"-C", dir}, args...), strings.NewReader(""), &out, &errb); code != 0 {
			t.Fatalf("opsbook %s: exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errb.String())
		}
		return out.String()
	}
	cli("run", filepath.Join(dir, "two.md"), "--env", "dev")
	id := strings.Fields(strings.Split(cli("runs"), "\n")[1])[0]

	tests := []struct {
		name        string
		change      func()
		want, avoid []string
	}{
		{name: "unchanged", change: func() {},
			want:  []string{"-> [hello] Say hello", "-> [bye] Say goodbye", "hello — Say hello  succeeded", "bye — Say goodbye  succeeded"},
			avoid: []string{"Note:"}},
		{name: "changed", change: func() {
			must(t, os.WriteFile(filepath.Join(dir, "two.md"), []byte(strings.Replace(doc, "### Say goodbye", "### Wave goodbye", 1)), 0o644))
		}, want: []string{"Note: two.md has changed since this run (snapshot ", "the titles shown are today's", "-> [bye] Wave goodbye"}},
		{name: "gone", change: func() { must(t, os.Remove(filepath.Join(dir, "two.md"))) },
			want:  []string{"Note: two.md is no longer in the workspace: steps are shown by id only.", "-> [hello] \n"},
			avoid: []string{"Say hello"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.change()
			out := cli("show", id)
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("show lacks %q:\n%s", w, out)
				}
			}
			for _, a := range tc.avoid {
				if strings.Contains(out, a) {
					t.Errorf("show has %q:\n%s", a, out)
				}
			}
		})
	}
}
