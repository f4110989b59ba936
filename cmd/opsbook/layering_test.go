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
// package runbook depends on the standard library alone, only main may
// import the CLI, the composition root, and the run service sits between
// the transports and the engine: it never imports a transport
// (internal/server and below), and only transports, the CLI and main
// import it.
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
			if p.ImportPath == module+"/internal/runs" && strings.HasPrefix(imp, module+"/internal/server") {
				t.Errorf("internal/runs imports %s: the run service may not depend on a transport", imp)
			}
			if imp == module+"/internal/runs" && !isTransport(p.ImportPath) {
				t.Errorf("%s imports internal/runs: only transports (internal/server/...), the CLI and main may", p.ImportPath)
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

// isTransport reports whether pkg may call the run service: the HTTP
// server and its handlers, the CLI, main, and commands and benchmarks
// outside internal/.
func isTransport(pkg string) bool {
	rel := strings.TrimPrefix(pkg, module+"/")
	return rel == "internal/server" || strings.HasPrefix(rel, "internal/server/") || rel == "internal/cli" ||
		!strings.HasPrefix(rel, "internal/")
}
