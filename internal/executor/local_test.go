package executor

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// hangLimit bounds waits that would otherwise hang the test binary; it is a
// deadlock detector, not a performance assertion.
const hangLimit = 20 * time.Second

// lockedBuffer is a bytes.Buffer safe for the copier goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newLocal returns a local executor that is closed when the test ends.
func newLocal(tb testing.TB, opts LocalOptions) *Local {
	l := NewLocal(opts)
	tb.Cleanup(func() { l.Close() })
	return l
}

func runLocal(t *testing.T, l *Local, ctx context.Context, c Command) Result {
	t.Helper()
	type answer struct {
		res Result
		err error
	}
	done := make(chan answer, 1)
	go func() {
		res, err := l.Run(ctx, c)
		done <- answer{res, err}
	}()
	select {
	case a := <-done:
		if a.err != nil {
			t.Fatalf("Run: %v", a.err)
		}
		return a.res
	case <-time.After(hangLimit):
		t.Fatalf("Run did not return within %v", hangLimit)
		return Result{}
	}
}

func TestLocalRun(t *testing.T) {
	l := newLocal(t, LocalOptions{BaseEnv: []string{"PATH=" + os.Getenv("PATH"), "BASE=base"}})
	workDir := t.TempDir()
	tests := []struct {
		name        string
		cmd         Command
		wantExit    int
		wantStdout  string
		wantStderr  string
		wantOutputs map[string]string
	}{
		{name: "success", cmd: Command{Script: "echo hello"}, wantStdout: "hello\n"},
		{name: "exit status", cmd: Command{Script: "echo oops >&2; exit 3"}, wantExit: 3, wantStderr: "oops\n"},
		{name: "bash", cmd: Command{Interpreter: "bash", Script: "echo ${BASH_VERSION:+bash}"}, wantStdout: "bash\n"},
		{name: "python3", cmd: Command{Interpreter: "python3", Script: "import os\nprint(os.environ['X'])"}, wantStdout: "from env\n"},
		{
			name:       "environment",
			cmd:        Command{Script: `echo "$BASE $P1 $P2"`, Env: map[string]string{"P1": "one", "P2": "two"}},
			wantStdout: "base one two\n",
		},
		{
			name:       "command env overrides base",
			cmd:        Command{Script: `echo "$BASE"`, Env: map[string]string{"BASE": "mine"}},
			wantStdout: "mine\n",
		},
		{
			// The value reaches the script as data, never as code.
			name:       "no interpolation",
			cmd:        Command{Script: `echo "$NAME"`, Env: map[string]string{"NAME": "x; echo injected $(id -u) `id`"}},
			wantStdout: "x; echo injected $(id -u) `id`\n",
		},
		{
			name:       "script text is verbatim",
			cmd:        Command{Script: `echo '${NAME}' "{{ .Name }}"`, Env: map[string]string{"NAME": "n"}},
			wantStdout: "${NAME} {{ .Name }}\n",
		},
		{name: "stdin is /dev/null", cmd: Command{Script: "cat; echo eof"}, wantStdout: "eof\n"},
		{name: "working directory", cmd: Command{Script: "pwd", Dir: workDir}, wantStdout: workDir + "\n"},
		{
			name:        "outputs",
			cmd:         Command{Script: "echo version=1.2.3 >> \"$OPSBOOK_OUTPUT\"\nprintf 'notes<<EOF\\na\\nb\\nEOF\\n' >> \"$OPSBOOK_OUTPUT\""},
			wantOutputs: map[string]string{"version": "1.2.3", "notes": "a\nb"},
		},
		{
			name:        "outputs of a failed command",
			cmd:         Command{Script: "echo partial=yes >> \"$OPSBOOK_OUTPUT\"; exit 1"},
			wantExit:    1,
			wantOutputs: map[string]string{"partial": "yes"},
		},
		{
			// A shell reads its script from a pipe only it holds.
			name:       "private files",
			cmd:        Command{Script: `stat -c '%a' "$(dirname "$OPSBOOK_OUTPUT")"; echo "$0"`},
			wantStdout: "700\n/dev/fd/3\n",
		},
		{
			// Other interpreters, and scripts too long for a pipe, get a
			// 0600 file in the private directory.
			name:       "private script file",
			cmd:        Command{Script: "#" + strings.Repeat("x", maxPipedScript) + "\nstat -c '%a' \"$0\"; case $0 in /dev/*) echo piped;; esac"},
			wantStdout: "600\n",
		},
		{
			// The whole script arrives through the pipe, to its last byte.
			name:       "piped script of the largest size",
			cmd:        Command{Script: "echo first\n#" + strings.Repeat("x", maxPipedScript-len("echo first\n#\necho last")) + "\necho last"},
			wantStdout: "first\nlast\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.cmd.Interpreter == "python3" {
				if _, err := exec.LookPath("python3"); err != nil {
					t.Skip("python3 not installed")
				}
				tt.cmd.Env = map[string]string{"X": "from env"}
			}
			var stdout, stderr lockedBuffer
			tt.cmd.Stdout, tt.cmd.Stderr = &stdout, &stderr
			res := runLocal(t, l, context.Background(), tt.cmd)
			if res.ExitCode != tt.wantExit || res.TimedOut || res.Canceled {
				t.Errorf("result = %+v, want exit %d", res, tt.wantExit)
			}
			if res.Succeeded() != (tt.wantExit == 0) {
				t.Errorf("Succeeded() = %v", res.Succeeded())
			}
			if got := stdout.String(); got != tt.wantStdout {
				t.Errorf("stdout = %q, want %q", got, tt.wantStdout)
			}
			if got := stderr.String(); got != tt.wantStderr {
				t.Errorf("stderr = %q, want %q", got, tt.wantStderr)
			}
			if !equalMaps(res.Outputs, tt.wantOutputs) {
				t.Errorf("outputs = %q, want %q", res.Outputs, tt.wantOutputs)
			}
			if len(res.Warnings) != 0 {
				t.Errorf("warnings = %q", res.Warnings)
			}
		})
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestLocalDefaultEnvironmentDropsOpsbookVariables(t *testing.T) {
	t.Setenv("OPSBOOK_PARAM_DB_PASSWORD", "hunter2")
	t.Setenv("OPSBOOK_TOKEN", "tok")
	t.Setenv("OPSBOOK_OUTPUT", "/outer/run/output")
	t.Setenv("OPSBOOK_TEST_KEEP_ME_NOT", "x")
	t.Setenv("UNRELATED_VARIABLE", "kept")
	l := newLocal(t, LocalOptions{})
	var stdout lockedBuffer
	res := runLocal(t, l, context.Background(), Command{
		Script: "env | grep -E '^(OPSBOOK_|UNRELATED_)' | sort",
		Env:    map[string]string{"OPSBOOK_STEP": "s1"},
		Stdout: &stdout,
	})
	if res.ExitCode != 0 {
		t.Fatalf("exit %d", res.ExitCode)
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "OPSBOOK_OUTPUT="+os.TempDir()) ||
		lines[1] != "OPSBOOK_STEP=s1" || lines[2] != "UNRELATED_VARIABLE=kept" {
		t.Errorf("environment = %q, want only a fresh OPSBOOK_OUTPUT, OPSBOOK_STEP and UNRELATED_VARIABLE", lines)
	}
}

func TestLocalRemovesItsFiles(t *testing.T) {
	tmp := t.TempDir()
	l := newLocal(t, LocalOptions{TempDir: tmp, KillGrace: 100 * time.Millisecond})
	privateDir := func() string {
		entries, err := os.ReadDir(tmp)
		if err != nil || len(entries) != 1 {
			t.Fatalf("%s holds %v (%v), want one private directory", tmp, entries, err)
		}
		return filepath.Join(tmp, entries[0].Name())
	}
	for _, c := range []Command{
		{Script: "exit 0"},
		{Script: "exit 7"},
		{Script: "echo a=1 >> \"$OPSBOOK_OUTPUT\""},
		{Script: "sleep 10", Timeout: 50 * time.Millisecond},
	} {
		runLocal(t, l, context.Background(), c)
		if entries, _ := os.ReadDir(privateDir()); len(entries) != 0 {
			t.Errorf("after %q: %v left behind", c.Script, entries)
		}
	}
	// A temp cleaner may remove the directory between steps.
	if err := os.RemoveAll(privateDir()); err != nil {
		t.Fatal(err)
	}
	// A piped script needs no file, but $OPSBOOK_OUTPUT still needs the
	// directory.
	if res := runLocal(t, l, context.Background(), Command{Script: "echo a=1 >> \"$OPSBOOK_OUTPUT\""}); res.ExitCode != 0 || res.Outputs["a"] != "1" {
		t.Errorf("after the directory was removed: %+v", res)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
		t.Errorf("after Close: %v left in %s", entries, tmp)
	}
	if _, err := l.Run(context.Background(), Command{Script: "exit 0"}); err == nil {
		t.Error("Run after Close succeeded")
	}
}

func TestLocalRunErrors(t *testing.T) {
	l := newLocal(t, LocalOptions{})
	tests := []struct {
		name    string
		cmd     Command
		wantErr string
		is      error
	}{
		{
			name:    "missing interpreter",
			cmd:     Command{Interpreter: "pwsh-not-installed-here", Script: "Write-Host hi"},
			wantErr: `interpreter "pwsh-not-installed-here" not found on local host`,
			is:      ErrInterpreterNotFound,
		},
		{
			name:    "interpreter outside the command's PATH",
			cmd:     Command{Interpreter: "sh", Script: "true", Env: map[string]string{"PATH": t.TempDir()}},
			wantErr: `interpreter "sh" not found on local host`,
			is:      ErrInterpreterNotFound,
		},
		{
			name:    "invalid environment name",
			cmd:     Command{Script: "true", Env: map[string]string{"A=B": "c"}},
			wantErr: `environment variable name "A=B" is not valid`,
		},
		{
			name:    "missing working directory",
			cmd:     Command{Script: "true", Dir: "/nonexistent/opsbook/dir"},
			wantErr: "start sh on local host",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := l.Run(context.Background(), tt.cmd)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.is)
			}
		})
	}
}

// processGone reports whether pid has exited (a zombie counts as exited:
// this container's init may never reap orphans).
func processGone(pid int) bool {
	if syscall.Kill(pid, 0) == syscall.ESRCH {
		return true
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	// The state follows the parenthesised command name.
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] == 'Z'
	}
	return false
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(hangLimit)
	for !processGone(pid) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("process %d is still running", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// readPIDs waits for the script to write its background pids, one a line.
func readPIDs(t *testing.T, path string, n int) []int {
	t.Helper()
	deadline := time.Now().Add(hangLimit)
	for {
		data, _ := os.ReadFile(path)
		fields := strings.Fields(string(data))
		if len(fields) >= n && strings.HasSuffix(string(data), "\n") {
			var pids []int
			for _, f := range fields {
				pid, err := strconv.Atoi(f)
				if err != nil {
					t.Fatalf("pid file %q: %v", data, err)
				}
				pids = append(pids, pid)
			}
			return pids
		}
		if time.Now().After(deadline) {
			t.Fatalf("script did not write %d pids to %s", n, path)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestLocalStopsProcessGroup(t *testing.T) {
	tests := []struct {
		name   string
		script string // writes the pids of its background processes to $PIDS
		cancel bool
	}{
		{
			name:   "timeout kills background children",
			script: "sleep 1000 & echo $! >> \"$PIDS\"; sleep 1000 & echo $! >> \"$PIDS\"; wait",
		},
		{
			name:   "timeout kills children that ignore SIGTERM",
			script: "trap '' TERM; sleep 1000 & echo $! >> \"$PIDS\"; while :; do sleep 0.05; done",
		},
		{
			name:   "timeout kills a grandchild holding the pipes",
			script: "sh -c 'trap \"\" TERM; sleep 1000 & echo $! >> \"$PIDS\"; wait' & wait",
		},
		{
			name:   "cancellation kills background children",
			script: "sleep 1000 & echo $! >> \"$PIDS\"; wait",
			cancel: true,
		},
		{
			name:   "cancellation kills children that ignore SIGTERM",
			script: "trap '' TERM; sleep 1000 & echo $! >> \"$PIDS\"; while :; do sleep 0.05; done",
			cancel: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pidFile := filepath.Join(t.TempDir(), "pids")
			l := newLocal(t, LocalOptions{KillGrace: 200 * time.Millisecond, PipeGrace: 100 * time.Millisecond})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			cmd := Command{
				Script: tt.script,
				Env:    map[string]string{"PIDS": pidFile, "PATH": os.Getenv("PATH")},
				Stdout: io.Discard,
				Stderr: io.Discard,
			}
			if tt.cancel {
				go func() {
					readPIDs(t, pidFile, 2)
					cancel()
				}()
			} else {
				cmd.Timeout = 300 * time.Millisecond
			}
			cmd.Script = "echo $$ >> \"$PIDS\"\n" + cmd.Script
			// Should the executor fail to stop them, do not leave them behind.
			t.Cleanup(func() {
				data, _ := os.ReadFile(pidFile)
				for i, f := range strings.Fields(string(data)) {
					if pid, err := strconv.Atoi(f); err == nil {
						if i == 0 {
							syscall.Kill(-pid, syscall.SIGKILL)
						}
						syscall.Kill(pid, syscall.SIGKILL)
					}
				}
			})
			res := runLocal(t, l, ctx, cmd)
			if res.ExitCode != -1 || res.TimedOut == tt.cancel || res.Canceled != tt.cancel || res.Succeeded() {
				t.Errorf("result = %+v", res)
			}
			for _, pid := range readPIDs(t, pidFile, 2) {
				waitGone(t, pid)
			}
		})
	}
}

func TestLocalBackgroundProcessCannotHoldRunOpen(t *testing.T) {
	l := newLocal(t, LocalOptions{PipeGrace: 100 * time.Millisecond})
	var stdout lockedBuffer
	res := runLocal(t, l, context.Background(), Command{
		Script: "sleep 1000 & echo pid=$! >> \"$OPSBOOK_OUTPUT\"; echo started",
		Stdout: &stdout,
		Stderr: io.Discard,
	})
	pid, err := strconv.Atoi(res.Outputs["pid"])
	if err != nil {
		t.Fatalf("outputs = %q", res.Outputs)
	}
	// A step may start a daemon: the executor leaves it running.
	if processGone(pid) {
		t.Errorf("background process %d was killed after a normal exit", pid)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	if res.ExitCode != 0 || stdout.String() != "started\n" {
		t.Errorf("result = %+v, stdout %q", res, stdout.String())
	}
}

func TestLocalAlreadyCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	marker := filepath.Join(t.TempDir(), "ran")
	res := runLocal(t, newLocal(t, LocalOptions{}), ctx, Command{Script: "touch " + marker})
	if !res.Canceled || res.ExitCode != -1 {
		t.Errorf("result = %+v", res)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the command ran although ctx was already cancelled")
	}
}

// chunkSignal reports its first Write on a channel.
type chunkSignal struct {
	lockedBuffer
	once  sync.Once
	first chan struct{}
}

func (c *chunkSignal) Write(p []byte) (int, error) {
	n, err := c.lockedBuffer.Write(p)
	c.once.Do(func() { close(c.first) })
	return n, err
}

func TestLocalStreamsOutputBeforeExit(t *testing.T) {
	gate := filepath.Join(t.TempDir(), "go-on")
	out := &chunkSignal{first: make(chan struct{})}
	done := make(chan Result, 1)
	go func() {
		res, err := newLocal(t, LocalOptions{}).Run(context.Background(), Command{
			Script: "echo first; while [ ! -e \"$GATE\" ]; do sleep 0.01; done; echo second",
			Env:    map[string]string{"GATE": gate},
			Stdout: out,
		})
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	select {
	case <-out.first:
	case <-time.After(hangLimit):
		os.WriteFile(gate, nil, 0o600)
		t.Fatal("no output arrived while the command was running")
	}
	if got := out.String(); got != "first\n" {
		t.Errorf("first chunk = %q", got)
	}
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	res := <-done
	if res.ExitCode != 0 || out.String() != "first\nsecond\n" {
		t.Errorf("result %+v, output %q", res, out.String())
	}
}

func TestLocalSharedWriterKeepsOrder(t *testing.T) {
	var both lockedBuffer
	res := runLocal(t, newLocal(t, LocalOptions{}), context.Background(), Command{
		Script: "echo a; echo b >&2; echo c; echo d >&2",
		Stdout: &both,
		Stderr: &both,
	})
	if res.ExitCode != 0 || both.String() != "a\nb\nc\nd\n" {
		t.Errorf("result %+v, output %q", res, both.String())
	}
}

// countingWriter counts bytes without keeping them.
type countingWriter struct {
	mu sync.Mutex
	n  int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.n += int64(len(p))
	c.mu.Unlock()
	return len(p), nil
}

func TestLocalLargeOutput(t *testing.T) {
	const size = 64 << 20
	var out countingWriter
	res := runLocal(t, newLocal(t, LocalOptions{}), context.Background(), Command{
		Script: "head -c " + strconv.Itoa(size) + " /dev/zero",
		Stdout: &out,
	})
	if res.ExitCode != 0 || out.n != size {
		t.Errorf("result %+v, %d bytes received, want %d", res, out.n, size)
	}
}

// Fault class: bytes lost, repeated or reordered where the copier changes
// buffers (output pouring in widens the pipe and moves to a larger
// buffer after a full read). Both streams print distinct numbered lines,
// more than the widened pipe holds, and arrive exactly.
func TestLocalLargeOutputExact(t *testing.T) {
	var stdout, stderr lockedBuffer
	res := runLocal(t, newLocal(t, LocalOptions{}), context.Background(), Command{
		Script: "seq 1 200000 >&2 & seq 1 1000000; wait",
		Stdout: &stdout,
		Stderr: &stderr,
	})
	if res.ExitCode != 0 {
		t.Fatalf("result %+v", res)
	}
	for _, c := range []struct {
		name string
		got  string
		n    int
	}{{"stdout", stdout.String(), 1000000}, {"stderr", stderr.String(), 200000}} {
		var want strings.Builder
		for i := 1; i <= c.n; i++ {
			want.WriteString(strconv.Itoa(i))
			want.WriteByte('\n')
		}
		if c.got != want.String() {
			i := 0
			for i < min(len(c.got), want.Len()) && c.got[i] == want.String()[i] {
				i++
			}
			t.Errorf("%s: %d bytes, want %d; first difference at byte %d", c.name, len(c.got), want.Len(), i)
		}
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestLocalFailingWriterDoesNotBlockCommand(t *testing.T) {
	res := runLocal(t, newLocal(t, LocalOptions{}), context.Background(), Command{
		// More than a pipe buffer: a copier that stopped reading would
		// leave the command blocked on write forever.
		Script: "head -c 1048576 /dev/zero; echo done=1 >> \"$OPSBOOK_OUTPUT\"",
		Stdout: failingWriter{},
	})
	if res.ExitCode != 0 || res.Outputs["done"] != "1" {
		t.Errorf("result %+v", res)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "disk full") {
		t.Errorf("warnings = %q, want the write error", res.Warnings)
	}
}

func TestLocalReportsMalformedOutputs(t *testing.T) {
	res := runLocal(t, newLocal(t, LocalOptions{}), context.Background(), Command{
		Script: "printf 'good=1\\nthis is wrong\\n' >> \"$OPSBOOK_OUTPUT\"",
	})
	if res.ExitCode != 0 || res.Outputs["good"] != "1" || len(res.Outputs) != 1 {
		t.Errorf("result %+v", res)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "line 2") {
		t.Errorf("warnings = %q", res.Warnings)
	}
}

func TestLocalConcurrentRuns(t *testing.T) {
	l := newLocal(t, LocalOptions{})
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out lockedBuffer
			n := strconv.Itoa(i)
			res, err := l.Run(context.Background(), Command{
				Script: "echo $N; echo n=$N >> \"$OPSBOOK_OUTPUT\"",
				Env:    map[string]string{"N": n},
				Stdout: &out,
			})
			if err != nil || res.Outputs["n"] != n || out.String() != n+"\n" {
				errs <- "run " + n + ": " + out.String() + " " + res.Outputs["n"]
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// BenchmarkLocalTrue measures a whole step of `true` through the executor;
// compare with BenchmarkExecTrue (os/exec alone) and BenchmarkShellLoopTrue
// (the per-command cost of a shell loop, the engine's reference).
func BenchmarkLocalTrue(b *testing.B) {
	l := newLocal(b, LocalOptions{})
	var out countingWriter
	cmd := Command{Script: "true", Stdout: &out, Stderr: &out, Env: map[string]string{"OPSBOOK_STEP": "s"}}
	for b.Loop() {
		res, err := l.Run(context.Background(), cmd)
		if err != nil || res.ExitCode != 0 {
			b.Fatalf("%+v %v", res, err)
		}
	}
}

func BenchmarkExecTrue(b *testing.B) {
	for b.Loop() {
		if err := exec.Command("/bin/true").Run(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkShellLoopTrue(b *testing.B) {
	b.StopTimer()
	cmd := exec.Command("sh", "-c", `i=0; while [ $i -lt "$1" ]; do /bin/true; i=$((i+1)); done`, "sh", strconv.Itoa(b.N))
	b.StartTimer()
	if err := cmd.Run(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkLocalOverhead alternates a `true` step through the executor with
// the same command spawned directly (`sh FILE` running `true`, which is
// what the executor runs) and with /bin/true, so that load from other
// processes hits all of them alike; it reports the executor's overhead.
func BenchmarkLocalOverhead(b *testing.B) {
	l := newLocal(b, LocalOptions{})
	script := filepath.Join(b.TempDir(), "script")
	if err := os.WriteFile(script, []byte("true"), 0o600); err != nil {
		b.Fatal(err)
	}
	var local, shDirect, binTrue time.Duration
	for b.Loop() {
		t0 := time.Now()
		if res, err := l.Run(context.Background(), Command{Script: "true", Stdout: io.Discard, Stderr: io.Discard}); err != nil || res.ExitCode != 0 {
			b.Fatalf("%+v %v", res, err)
		}
		t1 := time.Now()
		if err := exec.Command("sh", script).Run(); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		if err := exec.Command("/bin/true").Run(); err != nil {
			b.Fatal(err)
		}
		local, shDirect, binTrue = local+t1.Sub(t0), shDirect+t2.Sub(t1), binTrue+time.Since(t2)
	}
	n := float64(b.N)
	b.ReportMetric(float64(local.Nanoseconds())/n, "local-ns/step")
	b.ReportMetric(float64(shDirect.Nanoseconds())/n, "sh-file-ns/op")
	b.ReportMetric(float64(binTrue.Nanoseconds())/n, "bin-true-ns/op")
	b.ReportMetric(float64((local-shDirect).Nanoseconds())/n, "overhead-ns/step")
}

// TestLocalStartedReportsProcessGroup: the callback gets the leader's pid,
// which is the id of the group the command's children run in.
func TestLocalStartedReportsProcessGroup(t *testing.T) {
	l := newLocal(t, LocalOptions{Dir: t.TempDir()})
	var pid int
	var out bytes.Buffer
	res, err := l.Run(context.Background(), Command{Script: "sleep 0.2 & ps -o pgid= -p $!; wait",
		Started: func(p int) { pid = p }, Stdout: &out})
	if err != nil || !res.Succeeded() {
		t.Fatalf("run: %v %+v", err, res)
	}
	if pid == 0 || strings.TrimSpace(out.String()) != strconv.Itoa(pid) {
		t.Fatalf("Started got %d, the child's process group is %q", pid, strings.TrimSpace(out.String()))
	}
}

// Fault class: a failing command in the middle of a script (or of a
// pipeline) whose failure the shell would ignore without errexit, so the
// step "succeeds". sh runs with -e, bash with -e -o pipefail; errexit=false
// (Command.NoErrexit) turns that off; the line numbers in the shell's
// messages stay the script's own.
func TestLocalStrictShells(t *testing.T) {
	l := newLocal(t, LocalOptions{BaseEnv: []string{"PATH=" + os.Getenv("PATH")}})
	tests := []struct {
		name, interp, script string
		noErrexit            bool
		wantExit             int
		wantStdout           string
		wantStderr           string // a substring
	}{
		{name: "sh stops at false", interp: "sh", script: "echo one\nfalse\necho two\n", wantExit: 1, wantStdout: "one\n"},
		{name: "bash stops at false", interp: "bash", script: "echo one; false; echo two\n", wantExit: 1, wantStdout: "one\n"},
		{name: "bash pipefail", interp: "bash", script: "false | cat\necho after\n", wantExit: 1},
		{name: "sh opt-out", interp: "sh", script: "echo one\nfalse\necho two\n", noErrexit: true, wantStdout: "one\ntwo\n"},
		{name: "bash opt-out", interp: "bash", script: "false | cat\necho after\n", noErrexit: true, wantStdout: "after\n"},
		{name: "bash line number", interp: "bash", script: "echo one\n\nno-such-command-xyz\necho two\n", wantExit: 127, wantStdout: "one\n", wantStderr: "line 3: no-such-command-xyz"},
		{name: "sh line number", interp: "sh", script: "echo one\n\nno-such-command-xyz\necho two\n", wantExit: 127, wantStdout: "one\n", wantStderr: "3: no-such-command-xyz"},
		{name: "handled failure", interp: "bash", script: "if ! false; then echo handled; fi\nfalse || echo or\n", wantStdout: "handled\nor\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr lockedBuffer
			res := runLocal(t, l, context.Background(), Command{Interpreter: tt.interp, Script: tt.script,
				NoErrexit: tt.noErrexit, Stdout: &stdout, Stderr: &stderr})
			if res.ExitCode != tt.wantExit || stdout.String() != tt.wantStdout || !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("exit %d stdout %q stderr %q; want exit %d stdout %q stderr containing %q",
					res.ExitCode, stdout.String(), stderr.String(), tt.wantExit, tt.wantStdout, tt.wantStderr)
			}
		})
	}
}

// The command's ends of its pipes — stdout, stderr and the script on fd 3
// — are made without the poller's non-blocking mode (outputPipe,
// pipeScript). Fault class: a command handed a non-blocking stdout fails
// its writes with EAGAIN ("Resource temporarily unavailable") as soon as
// its reader falls behind; a slow destination must only slow it down.
func TestLocalCommandPipesBlock(t *testing.T) {
	var stdout lockedBuffer
	stderr := &slowWriter{}
	res, err := newLocal(t, LocalOptions{}).Run(context.Background(), Command{
		Script: `for fd in 0 1 2 3; do
  flags=$(sed -n 's/^flags:[[:space:]]*//p' /proc/$$/fdinfo/$fd)
  [ $(( 0$flags & 04000 )) -eq 0 ] || { echo "fd $fd is non-blocking ($flags)"; exit 1; }
done
head -c 1048576 /dev/zero >&2
echo blocking`,
		Stdout: &stdout,
		Stderr: stderr,
	})
	if err != nil || res.ExitCode != 0 || stdout.String() != "blocking\n" || stderr.n != 1<<20 {
		t.Fatalf("Run = %+v, %v; stdout %q, %d bytes of stderr", res, err, stdout.String(), stderr.n)
	}
}

// slowWriter takes its time over each write, as a busy store does.
type slowWriter struct{ n int }

func (w *slowWriter) Write(p []byte) (int, error) {
	time.Sleep(2 * time.Millisecond)
	w.n += len(p)
	return len(p), nil
}
