package main

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/opsbook/opsbook"

// TestLayering keeps imports pointing down (see STYLE.md): the domain
// package runbook depends on the standard library alone, and only main may
// import the CLI, the composition root.
func TestLayering(t *testing.T) {
	out, err := exec.Command("go", "list", "-json", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	seen := 0
	for {
		var p struct {
			ImportPath string
			Imports    []string
			Standard   bool
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		seen++
		for _, imp := range p.Imports {
			if p.ImportPath == module+"/internal/runbook" && strings.Contains(strings.SplitN(imp, "/", 2)[0], ".") {
				t.Errorf("internal/runbook imports %s: the domain package may use the standard library only", imp)
			}
			if imp == module+"/internal/cli" && p.ImportPath != module+"/cmd/opsbook" {
				t.Errorf("%s imports internal/cli: only cmd/opsbook may (the CLI is the composition root)", p.ImportPath)
			}
		}
	}
	if seen < 10 {
		t.Fatalf("go list returned only %d packages", seen)
	}
}
