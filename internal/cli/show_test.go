package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opsbook/opsbook/internal/runbook"
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

// hostileOutput is what a command may print to take over the terminal of
// whoever reads its log: a window title change, a screen clear, a cursor
// move, an OSC 8 hyperlink to elsewhere, a bell, besides ordinary colour.
const hostileOutput = `printf '\033]0;pwned\007\033[2J\033[H\033[31mred text\033[0m \033]8;;http://evil.example/\033\\click here\033]8;;\033\\ bell\007 done\n'`

// TestShowNeutralisesTerminalEscapes: fault — a step's output carries
// terminal control sequences. show (and run's line view) prints the text
// with every sequence neutralised; colours are dropped when stdout is not
// a colour terminal.
func TestShowNeutralisesTerminalEscapes(t *testing.T) {
	dir := t.TempDir()
	doc := "---\nkind: runbook\ntitle: Escapes\n---\n\n# Escapes\n\n## Steps\n\n### Print\n\n```sh {id=print}\n" + hostileOutput + "\n```\n"
	must(t, os.WriteFile(filepath.Join(dir, "opsbook.yaml"), []byte("name: show\nenvironments:\n  - name: dev\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "esc.md"), []byte(doc), 0o644))
	cli := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if code := Main(context.Background(), append([]string{"-C", dir}, args...), strings.NewReader(""), &out, &errb); code != 0 {
			t.Fatalf("opsbook %s: exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errb.String())
		}
		return out.String()
	}
	runOut := cli("run", filepath.Join(dir, "esc.md"), "--env", "dev")
	id := strings.Fields(strings.Split(cli("runs"), "\n")[1])[0]
	for name, out := range map[string]string{"show": cli("show", id), "run": runOut} {
		if strings.ContainsAny(out, "\x1b\x07") {
			t.Errorf("%s prints terminal control characters:\n%q", name, out)
		}
		if !strings.Contains(out, "[print] red text click here bell done") {
			t.Errorf("%s lost the text around the sequences:\n%s", name, out)
		}
	}
}

// TestRunViewKeepsOnlyColours: on a colour terminal the line view keeps
// SGR colours (reset at the end of the line) and still drops every other
// sequence.
func TestRunViewKeepsOnlyColours(t *testing.T) {
	var out bytes.Buffer
	v := newView(&out, "text", map[string]string{})
	v.color = true
	v.event(runbook.Event{Type: runbook.EventStepOutput, Step: "s", Stream: "stdout",
		Text: "\x1b]0;pwned\x07\x1b[2J\x1b[1;31mred\x1b[0m \x1b]8;;http://evil/\x1b\\link\x1b]8;;\x1b\\\n"})
	v.waitPrinted()
	want := "[s] \x1b[1;31mred\x1b[0m link\x1b[0m\n"
	if out.String() != want {
		t.Errorf("got %q, want %q", out.String(), want)
	}
}
