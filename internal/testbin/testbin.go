// Package testbin builds the real opsbook binary for tests that run it as
// users do (kill -9, several server nodes, the rehearsal labs): once per
// test process, into a temporary directory.
package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	once sync.Once
	path string
	err  error
)

// Opsbook returns the path of the opsbook binary built from this tree.
func Opsbook(t testing.TB) string {
	t.Helper()
	p, err := Build()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Build builds the opsbook binary from this tree once per process and
// returns its path: for programs (benchmarks) that have no testing.TB.
func Build() (string, error) {
	once.Do(func() {
		dir, derr := os.MkdirTemp("", "opsbook-bin-")
		if derr != nil {
			err = derr
			return
		}
		path = filepath.Join(dir, "opsbook")
		out, berr := exec.Command("go", "build", "-o", path, "github.com/opsbook/opsbook/cmd/opsbook").CombinedOutput()
		if berr != nil {
			err = fmt.Errorf("go build: %v\n%s", berr, out)
		}
	})
	return path, err
}

// Cleanup removes the binary, if one was built; call it from TestMain
// after the tests ran.
func Cleanup() {
	if path != "" {
		os.RemoveAll(filepath.Dir(path))
	}
}
