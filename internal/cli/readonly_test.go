package cli

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Fault class: the run store's file system is read-only (remounted ro
// after errors, a full disk mounted read-only, a forensic copy). `opsbook
// runs` failed to open the store and listed nothing.
func TestRunsOnReadOnlyStore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ws")
	must(t, os.Mkdir(dir, 0o755))
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs to make read-only (%v: %s); the fault needs mount rights", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	doc := "---\nkind: runbook\ntitle: T\n---\n\n# T\n\n## Steps\n\n### A\n\n```sh {id=a}\necho a\n```\n"
	must(t, os.WriteFile(filepath.Join(dir, "opsbook.yaml"), []byte("name: ro\nenvironments:\n  - name: dev\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "t.md"), []byte(doc), 0o644))
	cli := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := Main(context.Background(), append([]string{"-C", dir}, args...), strings.NewReader(""), &out, &errb)
		return code, out.String(), errb.String()
	}
	if code, out, errOut := cli("run", filepath.Join(dir, "t.md"), "--env", "dev"); code != ExitOK {
		t.Fatalf("run: exit %d\n%s%s", code, out, errOut)
	}
	if out, err := exec.Command("mount", "-o", "remount,ro", dir).CombinedOutput(); err != nil {
		t.Fatalf("remount read-only: %v %s", err, out)
	}
	code, out, errOut := cli("runs")
	if code != ExitOK || !strings.Contains(out, "succeeded") || !strings.Contains(out, "t.md") || !strings.Contains(errOut, "showing it read-only") {
		t.Fatalf("runs on a read-only store: exit %d\n%s%s", code, out, errOut)
	}
}
