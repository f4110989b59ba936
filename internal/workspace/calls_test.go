package workspace

import (
	"errors"
	"fmt"
	"slices"
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
	called, order, err := ResolveCalls(load, parse("ops/runbooks/main.md"), parse("ops/runbooks/rollback.md"))
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
	_, _, err = ResolveCalls(func(p string) (*runbook.Document, error) { return nil, fmt.Errorf("read %s: %w", p, boom) }, parse("ops/runbooks/main.md"))
	if !errors.Is(err, boom) {
		t.Errorf("a load error is returned: %v", err)
	}
}
