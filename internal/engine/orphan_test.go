package engine

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// procStartTime reads a process's stat line with one read. Fault class: a
// hostile command name — spaces and parentheses in comm, which ends the
// comm field only at the line's last ')' — or a short read would shift the
// fields and record the wrong start time, and resume would then take a
// live orphan for a reused pid (or the reverse).
func TestProcStartTime(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "a) (b c) 4 5")
	if err := os.Symlink("/bin/sleep", name); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(name, "10")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	for _, pid := range []int{os.Getpid(), cmd.Process.Pid} {
		got, err := procStartTime(pid)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			t.Fatal(err)
		}
		fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if want := fields[19]; got != want {
			t.Fatalf("pid %d (%q): start time %q, want %q", pid, b[:bytes.LastIndexByte(b, ')')+1], got, want)
		}
	}
	if _, err := procStartTime(1 << 30); err == nil {
		t.Fatal("a pid that does not exist has a start time")
	}
}
