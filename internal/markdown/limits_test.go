package markdown

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/opsbook/opsbook/internal/runbook"
)

const limitHead = "---\nkind: runbook\ntitle: t\n---\n\n# T\n\n## Steps\n\n### One\n\n"

// TestInputLimits: faults — inputs built to exhaust the parser. Each is
// refused with an input-limit error where the limit is exceeded, and the
// rest of the document is not parsed.
func TestInputLimits(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string // "line:col message part"
	}{
		{"document over the size limit", limitHead + strings.Repeat("x", MaxFileSize),
			"1:1 larger than 1048576 bytes"},
		{"too many lines", limitHead + strings.Repeat("x\n", MaxLines),
			"50001:1 the limit is 50000"},
		{"quotes nested past the limit", limitHead + strings.Repeat(">", MaxNesting+1) + " x\n",
			"12:103 nested 101 levels deep"},
		{"list items nested on one line", limitHead + strings.Repeat("- ", MaxNesting) + "x\n",
			"12:201 nested 150 levels deep"},
		{"list items nested by indentation", limitHead + func() string {
			var b strings.Builder
			for i := range MaxNesting + 1 {
				b.WriteString(strings.Repeat("  ", i) + "- x\n")
			}
			return b.String()
		}(), "112:203 nested 101 levels deep"},
		{"fence info string over the limit", limitHead + "```sh {" + strings.Repeat("a", MaxInfoString) + "}\necho\n```\n",
			"12:4 info string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, diags := Parse("x.md", []byte(tt.src))
			var found *runbook.Diagnostic
			for i, d := range diags {
				if d.Rule == RuleInputLimit {
					found = &diags[i]
				}
			}
			if found == nil {
				t.Fatalf("no %s diagnostic; got %v", RuleInputLimit, diags)
			}
			where, part, _ := strings.Cut(tt.want, " ")
			if got := fmt.Sprintf("%d:%d", found.Pos.Line, found.Pos.Col); got != where || !strings.Contains(found.Message, part) {
				t.Errorf("got %s %s, want at %s a message with %q", got, found.Message, where, part)
			}
			if tt.name != "fence info string over the limit" && len(doc.Steps) != 0 {
				t.Errorf("the body of a refused document was parsed: %d steps", len(doc.Steps))
			}
		})
	}
	// Just inside the limits is an ordinary document.
	ok := limitHead + strings.Repeat(">", MaxNesting) + " x\n" + "```sh {id=x" + strings.Repeat(" ", MaxInfoString-20) + "}\necho\n```\n"
	if _, diags := Parse("x.md", []byte(ok)); len(diags) != 0 {
		for _, d := range diags {
			if d.Rule == RuleInputLimit {
				t.Errorf("inside the limits: %v", d)
			}
		}
	}
}

// TestReadFileRefusesNonRegular: faults — a document path naming a device
// that never ends (/dev/zero), a FIFO nobody writes, a directory. Each is
// refused at once without reading it; a regular file is read up to one
// byte past MaxFileSize.
func TestReadFileRefusesNonRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "pipe.md")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ path, want string }{
		{"/dev/zero", "is a device"},
		{fifo, "is a named pipe"},
		{dir, "is a directory"},
	} {
		if _, err := ReadFile(c.path); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ReadFile(%s) = %v, want an error saying it %s", c.path, err, c.want)
		}
		if _, _, err := ParseFile(c.path); err == nil {
			t.Errorf("ParseFile(%s) read it", c.path)
		}
	}
	big := filepath.Join(dir, "big.md")
	if err := os.WriteFile(big, make([]byte, 3*MaxFileSize), 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := ReadFile(big)
	if err != nil || len(src) != MaxFileSize+1 {
		t.Fatalf("ReadFile(big) = %d bytes, %v; want %d", len(src), err, MaxFileSize+1)
	}
	_, diags, err := ParseFile(big)
	if err != nil || len(diags) != 1 || diags[0].Rule != RuleInputLimit {
		t.Errorf("ParseFile(big) = %v, %v; want one input-limit diagnostic", diags, err)
	}
}
