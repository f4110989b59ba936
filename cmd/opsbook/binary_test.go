package main

import (
	"bufio"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// These tests build the binary the way README and scripts/release.sh do
// (CGO_ENABLED=0, version info by -ldflags) and run it as a user would.
// It is built into a directory named like the go command's build cache,
// which is where `go run` puts the binaries it starts.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

const testVersion = "v9.9.9-test"

func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "opsbook-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "go-build123", "exe", "opsbook")
		pkg := module + "/internal/cli"
		cmd := exec.Command("go", "build", "-ldflags",
			fmt.Sprintf("-X %s.Version=%s -X %s.Commit=abc1234 -X %s.Date=2026-12-01T10:00:00Z", pkg, testVersion, pkg, pkg),
			"-o", binPath, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// TestStaticBinary: the documented build links nothing dynamically (the
// default build with cgo needs libc for net and os/user), and --version
// carries what -ldflags set.
func TestStaticBinary(t *testing.T) {
	bin := binary(t)
	if runtime.GOOS == "linux" {
		f, err := elf.Open(bin)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Error("the binary asks for a dynamic loader (PT_INTERP): it is not static")
			}
		}
		if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
			t.Errorf("the binary needs shared libraries %v", libs)
		}
	}
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("--version: %v\n%s", err, out)
	}
	want := "opsbook " + testVersion + " (commit abc1234, 2026-12-01T10:00:00Z, "
	if !strings.HasPrefix(string(out), want) {
		t.Errorf("--version = %q, want it to start with %q", out, want)
	}
}

// server is an `opsbook serve` process of the built binary.
type server struct {
	url string
	pid int
}

var servingLine = regexp.MustCompile(`on (http://\S+) \(pid (\d+): stop it with Ctrl-C or kill \d+\)`)

// startServe starts `opsbook serve` on a loopback port through shell
// (sh -c '… & wait', so the shell is its parent, as `go run` is) and
// returns the server and the shell.
func startServe(t *testing.T, bin string) (server, *exec.Cmd) {
	t.Helper()
	dir := t.TempDir()
	ws := filepath.Join(dir, "ws")
	if out, err := exec.Command(bin, "init", ws).CombinedOutput(); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	log := filepath.Join(dir, "serve.log")
	sh := exec.Command("sh", "-c", `"$0" serve --addr 127.0.0.1:0 --workspace "$1" --data "$2" >"$3" 2>&1 & wait`,
		bin, ws, filepath.Join(dir, "data"), log)
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, _ := os.ReadFile(log)
		if m := servingLine.FindSubmatch(b); m != nil {
			pid, _ := strconv.Atoi(string(m[2]))
			s := server{url: string(m[1]), pid: pid}
			t.Cleanup(func() {
				syscall.Kill(s.pid, syscall.SIGKILL)
				sh.Process.Kill()
				sh.Wait()
			})
			return s, sh
		}
		if time.Now().After(deadline) {
			sh.Process.Kill()
			sh.Wait()
			t.Fatalf("serve did not print where it serves and its pid within 30 s:\n%s", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// alive reports whether pid is a running (not exited, not zombie) process.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return runtime.GOOS != "linux"
	}
	defer f.Close()
	line, _ := bufio.NewReader(f).ReadString('\n')
	if i := strings.LastIndex(line, ")"); i >= 0 && i+2 < len(line) {
		return line[i+2] != 'Z'
	}
	return true
}

func waitGone(pid int, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if !alive(pid) {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}

// TestHealthcheckCommand is the container's HEALTHCHECK: the static binary
// asks a real server's /readyz; a stopped server fails it.
func TestHealthcheckCommand(t *testing.T) {
	bin := binary(t)
	s, _ := startServe(t, bin)
	out, err := exec.Command(bin, "healthcheck", "--url", s.url+"/readyz").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "200") {
		t.Fatalf("healthcheck of a serving server: %v\n%s", err, out)
	}
	if err := syscall.Kill(s.pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if !waitGone(s.pid, 20*time.Second) {
		t.Fatal("serve did not stop on SIGTERM")
	}
	out, err = exec.Command(bin, "healthcheck", "--url", s.url+"/readyz", "--timeout", "2s").CombinedOutput()
	var ee *exec.ExitError
	if err == nil || !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("healthcheck of a stopped server: err %v, want exit status 1\n%s", err, out)
	}
}

// TestServeStopsWhenGoRunExits is the quick start's fault: `go run …
// serve &` then `kill <pid of go run>` left the compiled server holding
// the port. A server started from the go command's build directory stops
// when its parent goes.
func TestServeStopsWhenGoRunExits(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no sh")
	}
	s, sh := startServe(t, binary(t))
	if err := sh.Process.Kill(); err != nil { // the parent dies without a word to its child
		t.Fatal(err)
	}
	sh.Wait()
	if !waitGone(s.pid, 15*time.Second) {
		t.Fatalf("serve (pid %d) still runs 15 s after its parent was killed", s.pid)
	}
}
