package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opsbook/opsbook/internal/markdown"
)

// TestLibraryPlans shows, for every runbook of the sample workspace (the
// built-in library and the demo), the plan `opsbook run --dry-run` prints
// in the first environment it may run in: steps, targets with their hosts
// and batches, commands, checks, guards, estimates and what the rollback
// plan would do. The plans are golden files, so a change to a library
// runbook shows up in review as a change to what it executes.
func TestLibraryPlans(t *testing.T) {
	ws, err := filepath.Abs(filepath.Join("..", "..", "examples", "workspace"))
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("OPSBOOK_STATE_DIR", t.TempDir()) // a dry run records nothing, but never write into the repository
	runbooks, err := filepath.Glob(filepath.Join(ws, "ops", "runbooks", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	planned := 0
	for _, path := range runbooks {
		doc, _, err := markdown.ParseFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if doc.Front.Kind != "runbook" {
			continue
		}
		name := strings.TrimSuffix(filepath.Base(path), ".md")
		t.Run(name, func(t *testing.T) {
			envName := "staging"
			if len(doc.Front.Environments) > 0 {
				envName = doc.Front.Environments[0]
			}
			var out, errOut bytes.Buffer
			code := Main(t.Context(), []string{"-C", ws, "run", path, "--env", envName, "--dry-run"}, strings.NewReader(""), &out, &errOut)
			if code != 0 {
				t.Fatalf("dry run of %s in %s: exit %d\n%s", name, envName, code, errOut.String())
			}
			plan := strings.ReplaceAll(out.String(), ws+string(filepath.Separator), "")
			if !strings.Contains(plan, "Dry run: nothing was executed.") || !strings.Contains(plan, "1. [") {
				t.Fatalf("not a plan:\n%s", plan)
			}
			golden := filepath.Join("testdata", "plans", name+".txt")
			if *update {
				must(t, os.MkdirAll(filepath.Dir(golden), 0o755))
				must(t, os.WriteFile(golden, []byte(plan), 0o644))
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if plan != string(want) {
				t.Errorf("plan of %s changed; if that is intended, run go test ./internal/cli -run TestLibraryPlans -update\n--- got\n%s", name, plan)
			}
		})
		planned++
	}
	if planned < 8 {
		t.Fatalf("planned %d runbooks; the sample workspace should hold the library's 7 and the demo", planned)
	}
}
