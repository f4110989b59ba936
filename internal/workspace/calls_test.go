package workspace

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/opsbook/opsbook/internal/markdown"
	"github.com/opsbook/opsbook/internal/runbook"
)

func TestResolveCalls(t *testing.T) {
	call := func(ref string) string {
		return "### c\n```call {runbook=" + ref + "}\n```\n"
	}
	files := map[string]string{
		"ops/runbooks/main.md":     call("lib/a.md") + call("lib/a.md") + call("missing.md"),
		"ops/runbooks/rollback.md": call("lib/b.md"),
		"ops/runbooks/lib/a.md":    call("c.md"),
		"ops/runbooks/lib/b.md":    "### b\n```sh\ntrue\n```\n",
		"ops/runbooks/lib/c.md":    call("a.md"), // a cycle back to a.md
	}
	parse := func(p string) *runbook.Document {
		doc, _ := markdown.Parse(p, []byte("---\nkind: runbook\n---\n## Steps\n"+files[p]))
		return doc
	}
	var loads []string
	load := func(p string) (*runbook.Document, error) {
		loads = append(loads, p)
		if _, ok := files[p]; !ok {
			return nil, nil
		}
		return parse(p), nil
	}
	called, order, err := ResolveCalls(".", load, parse("ops/runbooks/main.md"), parse("ops/runbooks/rollback.md"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range order {
		got = append(got, d.Path)
	}
	if want := []string{"ops/runbooks/lib/a.md", "ops/runbooks/lib/c.md", "ops/runbooks/lib/b.md"}; !slices.Equal(got, want) {
		t.Errorf("order %v, want %v", got, want)
	}
	for ref, want := range map[string]string{"lib/a.md": "ops/runbooks/lib/a.md", "c.md": "ops/runbooks/lib/c.md", "lib/b.md": "ops/runbooks/lib/b.md"} {
		if called[ref] == nil || called[ref].Path != want {
			t.Errorf("called[%s] = %v, want %s", ref, called[ref], want)
		}
	}
	if len(called) != 3 {
		t.Errorf("called has %d entries, want 3: %v", len(called), called)
	}
	if want := []string{"ops/runbooks/lib/a.md", "ops/runbooks/lib/c.md", "ops/runbooks/missing.md", "ops/runbooks/lib/b.md"}; !slices.Equal(loads, want) {
		t.Errorf("loaded %v, want each once: %v", loads, want)
	}

	boom := errors.New("boom")
	_, _, err = ResolveCalls(".", func(p string) (*runbook.Document, error) { return nil, fmt.Errorf("read %s: %w", p, boom) }, parse("ops/runbooks/main.md"))
	if !errors.Is(err, boom) {
		t.Errorf("a load error is returned: %v", err)
	}
}

// TestCheckRef: faults — rollback: and call references that reach outside
// the workspace (climbing with .., absolute paths such as /dev/zero) or
// name the document itself. Each is refused; references inside are
// resolved relative to the document.
func TestCheckRef(t *testing.T) {
	tests := []struct {
		root, from, ref string
		want            string // the path, or a part of the error
	}{
		{".", "ops/runbooks/main.md", "lib/a.md", "ops/runbooks/lib/a.md"},
		{".", "ops/runbooks/main.md", "../active/x/r.md", "ops/active/x/r.md"},
		{".", "ops/runbooks/main.md", "../../../outside.md", "leads outside the workspace"},
		{".", "ops/runbooks/main.md", "../../..", "leads outside the workspace"},
		{".", "ops/runbooks/main.md", "/dev/zero", "is an absolute path"},
		{".", "ops/runbooks/main.md", "main.md", "is this document itself"},
		{".", "ops/runbooks/main.md", "./lib/../main.md", "is this document itself"},
		{"/w", "/w/ops/main.md", "../../etc/passwd", "leads outside the workspace"},
		{"/w", "/w/ops/main.md", "rb.md", "/w/ops/rb.md"},
	}
	for _, tt := range tests {
		got, err := runbook.CheckRef(tt.root, tt.from, tt.ref)
		if err != nil {
			got = err.Error()
		}
		if !strings.Contains(got, tt.want) || (err == nil) != strings.HasSuffix(tt.want, ".md") {
			t.Errorf("CheckRef(%q, %q, %q) = %q, want %q", tt.root, tt.from, tt.ref, got, tt.want)
		}
	}

	// A call reference outside is a *RefError at the call block.
	doc, _ := markdown.Parse("ops/runbooks/main.md", []byte("---\nkind: runbook\n---\n## Steps\n### c\n```call {runbook=../../../outside.md}\n```\n"))
	_, _, err := ResolveCalls(".", func(p string) (*runbook.Document, error) {
		t.Errorf("loaded %s", p)
		return nil, nil
	}, doc)
	var re *runbook.RefError
	if !errors.As(err, &re) || re.Diagnostic.String() != "ops/runbooks/main.md:6:1: error: call: ../../../outside.md leads outside the workspace; keep rollback and called documents inside it" {
		t.Errorf("ResolveCalls = %v, want a RefError at the call block", err)
	}
	doc.Front.Rollback = "/dev/zero"
	if _, err := runbook.RollbackPath(".", doc); !errors.As(err, &re) || !strings.Contains(err.Error(), "rollback: /dev/zero is an absolute path") {
		t.Errorf("RollbackPath = %v, want a RefError", err)
	}
}
