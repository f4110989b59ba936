package cli

import (
	"github.com/opsbook/opsbook/internal/testbin"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// copyTree copies the regular files under src to dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			if d.Name() == ".opsbook" {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestSampleWorkspaceDemoRuns runs the sample workspace's demo runbook for
// real, as the README's quick start does: archive a directory, restore it
// and compare checksums. A failure means the first thing a new user runs is
// broken.
func TestSampleWorkspaceDemoRuns(t *testing.T) {
	bin := testbin.Opsbook(t)
	ws := t.TempDir()
	copyTree(t, filepath.Join("..", "..", "examples", "workspace"), ws)
	home := t.TempDir()
	src := t.TempDir()
	for i, name := range []string{"a.txt", "b/c.txt", "b/d/e.conf"} {
		p := filepath.Join(src, name)
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(t, os.WriteFile(p, []byte(strings.Repeat("x", i*100)), 0o644))
	}
	run := func(args ...string) (string, int) {
		cmd := exec.Command(bin, args...)
		cmd.Dir = ws
		cmd.Env = append(os.Environ(), "HOME="+home, "TMPDIR="+t.TempDir())
		out, _ := cmd.CombinedOutput()
		return string(out), cmd.ProcessState.ExitCode()
	}
	out, code := run("lint", "ops")
	if code != 0 {
		t.Fatalf("the sample workspace does not lint clean (exit %d):\n%s", code, out)
	}
	out, code = run("run", "ops/runbooks/demo-backup-restore.md", "--env", "dev", "--yes", "--param", "SOURCE_DIR="+src, "--param", "KEEP=1")
	if code != 0 {
		t.Fatalf("demo run exit %d:\n%s", code, out)
	}
	for _, want := range []string{"restore verified: 3 files match the snapshot archived", "go by ", "run succeeded"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo run output lacks %q:\n%s", want, out)
		}
	}
	archives, _ := filepath.Glob(filepath.Join(home, ".cache", "opsbook-demo", "backups", "backup-*.tar.gz"))
	if len(archives) != 1 {
		t.Errorf("archives kept: %v, want exactly one", archives)
	}
}
