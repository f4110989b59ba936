package sshexec_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opsbook/opsbook/internal/executor"
	"github.com/opsbook/opsbook/internal/executor/sshexec"
	"github.com/opsbook/opsbook/internal/executor/sshexec/sshdtest"
	"github.com/opsbook/opsbook/internal/runbook"
	"golang.org/x/crypto/ssh"
)

// options trusts exactly the given servers and logs in with the harness key.
func options(t *testing.T, servers ...sshdtest.Server) sshexec.Options {
	t.Helper()
	return sshexec.Options{
		IdentityFiles:      []string{sshdtest.ClientKey(servers[0])},
		KnownHostsFiles:    []string{sshdtest.KnownHosts(t, servers...)},
		SkipUserKnownHosts: true,
		AgentSocket:        "",
		ConnectTimeout:     5 * time.Second,
		KillGrace:          500 * time.Millisecond,
	}
}

func dial(t *testing.T, s sshdtest.Server, opts sshexec.Options) *sshexec.Executor {
	t.Helper()
	ex, err := sshexec.Dial(context.Background(), s.Host, opts)
	if err != nil {
		t.Fatalf("dial %s: %v", s.Addr(), err)
	}
	t.Cleanup(func() { ex.Close() })
	return ex
}

func run(t *testing.T, ex *sshexec.Executor, cmd executor.Command) (executor.Result, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	res, err := ex.Run(context.Background(), cmd)
	if err != nil {
		t.Fatalf("run %q: %v (stderr %q)", cmd.Script, err, stderr.String())
	}
	return res, stdout.String(), stderr.String()
}

func TestSeveralHostsConcurrently(t *testing.T) {
	servers := sshdtest.Start(t, 3)
	pool, err := sshexec.NewPool(options(t, servers...))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()

	var wg sync.WaitGroup
	errs := make([]error, len(servers)*3)
	for i := range errs {
		wg.Go(func() {
			s := servers[i%len(servers)]
			ex, err := pool.Get(context.Background(), s.Host)
			if err != nil {
				errs[i] = err
				return
			}
			var out bytes.Buffer
			res, err := ex.Run(context.Background(), executor.Command{
				Script: "echo \"$N on $SSH_CONNECTION\"; echo oops >&2; exit 3",
				Env:    map[string]string{"N": strconv.Itoa(i)},
				Stdout: &out,
			})
			switch {
			case err != nil:
				errs[i] = err
			case res.ExitCode != 3:
				errs[i] = fmt.Errorf("exit code %d, want 3", res.ExitCode)
			case !strings.HasPrefix(out.String(), strconv.Itoa(i)+" on ") || !strings.Contains(out.String(), " "+strconv.Itoa(s.Host.Port)):
				errs[i] = fmt.Errorf("stdout %q: want run %d on port %d", out.String(), i, s.Host.Port)
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("run %d: %v", i, err)
		}
	}
	// Same host, same connection: the pool dials once.
	a, _ := pool.Get(context.Background(), servers[0].Host)
	b, _ := pool.Executor(context.Background(), servers[0].Host)
	if a != b {
		t.Error("pool dialled the same host twice")
	}
}

func TestEnvValuesAreNotInterpreted(t *testing.T) {
	s := sshdtest.Start(t, 1)[0]
	ex := dial(t, s, options(t, s))
	marker := filepath.Join(t.TempDir(), "pwned")
	values := map[string]string{
		"SINGLE":    `it's 'quoted' ''`,
		"DOUBLE":    `say "hi" \"there\"`,
		"SUBST":     "$(touch " + marker + ")",
		"BACKTICK":  "`touch " + marker + "`",
		"VAR":       "$HOME ${PATH} $$ $1",
		"NEWLINES":  "line1\nline2\n\nline4\n",
		"UNICODE":   "数据库迁移 — café ✓",
		"GLOB":      "* ? [a-z] ~",
		"SEMICOLON": "; touch " + marker + " && echo no | cat",
		"BACKSLASH": `C:\new\table \\ \'`,
		"DASH":      "-n -e --",
		"EMPTY":     "",
		"HEREDOC":   "OPSBOOK_SCRIPT_x\nEOF\n'EOF'",
	}
	names := make([]string, 0, len(values))
	for k := range values {
		names = append(names, k)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			res, out, errOut := run(t, ex, executor.Command{
				Script: `printf '%s' "$` + name + `"`,
				Env:    values,
			})
			if res.ExitCode != 0 {
				t.Fatalf("exit %d, stderr %q", res.ExitCode, errOut)
			}
			if out != values[name] {
				t.Errorf("got %q, want %q", out, values[name])
			}
		})
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("a value was executed by a shell: the marker file exists")
	}
}

func TestScriptIsVerbatim(t *testing.T) {
	s := sshdtest.Start(t, 1)[0]
	ex := dial(t, s, options(t, s))
	tests := []struct {
		name, interp, script, want string
	}{
		{"sh", "sh", "printf '%s\\n' 'a\\b' \"$0\" | head -1\n", "a\\b\n"},
		{"heredoc-lookalike", "sh", "cat <<'EOF'\nOPSBOOK_SCRIPT_\n$(not run)\nEOF\n", "OPSBOOK_SCRIPT_\n$(not run)\n"},
		{"no-final-newline", "sh", "echo done", "done\n"},
		{"bash", "bash", "a=(x y z); echo ${#a[@]} ${BASH_VERSION:+bash}", "3 bash\n"},
		{"unicode", "sh", "echo 检查点 ✓", "检查点 ✓\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, out, errOut := run(t, ex, executor.Command{Interpreter: tt.interp, Script: tt.script})
			if res.ExitCode != 0 || out != tt.want {
				t.Errorf("exit %d stdout %q stderr %q; want stdout %q", res.ExitCode, out, errOut, tt.want)
			}
		})
	}
}

// Fault class: a failing command mid-script (or mid-pipeline) that the
// remote shell would ignore without errexit. Over SSH as locally, sh runs
// with -e and bash with -e -o pipefail unless the block opts out, and the
// shell's messages keep the script's line numbers.
func TestStrictShells(t *testing.T) {
	s := sshdtest.Start(t, 1)[0]
	ex := dial(t, s, options(t, s))
	tests := []struct {
		name, interp, script string
		noErrexit            bool
		wantExit             int
		wantStdout           string
		wantStderr           string
	}{
		{name: "sh stops at false", interp: "sh", script: "echo one\nfalse\necho two\n", wantExit: 1, wantStdout: "one\n"},
		{name: "bash pipefail", interp: "bash", script: "false | cat\necho after\n", wantExit: 1},
		{name: "bash opt-out", interp: "bash", script: "false | cat\necho after\n", noErrexit: true, wantStdout: "after\n"},
		{name: "bash line number", interp: "bash", script: "echo one\n\nno-such-command-xyz\necho two\n", wantExit: 127, wantStdout: "one\n", wantStderr: "line 3: no-such-command-xyz"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, out, errOut := run(t, ex, executor.Command{Interpreter: tt.interp, Script: tt.script, NoErrexit: tt.noErrexit})
			if res.ExitCode != tt.wantExit || out != tt.wantStdout || !strings.Contains(errOut, tt.wantStderr) {
				t.Errorf("exit %d stdout %q stderr %q; want exit %d stdout %q stderr containing %q",
					res.ExitCode, out, errOut, tt.wantExit, tt.wantStdout, tt.wantStderr)
			}
		})
	}
}

func TestExitStatusDirAndSetupErrors(t *testing.T) {
	s := sshdtest.Start(t, 1)[0]
	ex := dial(t, s, options(t, s))
	before := tempDirs(t, s)
	dir := t.TempDir()
	tests := []struct {
		name    string
		cmd     executor.Command
		code    int
		stdout  string
		wantErr string
	}{
		{"zero", executor.Command{Script: "true"}, 0, "", ""},
		{"nonzero", executor.Command{Script: "exit 42"}, 42, "", ""},
		{"status-140", executor.Command{Script: "exit 140"}, 140, "", ""},
		{"killed-by-signal", executor.Command{Script: "kill -USR2 $$"}, 140, "", ""},
		{"failing-command", executor.Command{Script: "false"}, 1, "", ""},
		{"dir", executor.Command{Script: "pwd", Dir: dir}, 0, dir + "\n", ""},
		{"missing-dir", executor.Command{Script: "pwd", Dir: "/nonexistent/x"}, -1, "", `working directory "/nonexistent/x" does not exist`},
		{"missing-interpreter", executor.Command{Interpreter: "no-such-interp", Script: "x"}, -1, "", `interpreter not found: interpreter "no-such-interp" is not installed`},
		{"bad-interpreter", executor.Command{Interpreter: "sh; rm", Script: "x"}, -1, "", "not a plain program name"},
		{"bad-env-name", executor.Command{Script: "true", Env: map[string]string{"A-B": "1"}}, -1, "", `"A-B" is not valid`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			tt.cmd.Stdout = &out
			res, err := ex.Run(context.Background(), tt.cmd)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.ExitCode != tt.code || out.String() != tt.stdout {
				t.Errorf("exit %d stdout %q, want %d %q", res.ExitCode, out.String(), tt.code, tt.stdout)
			}
			if res.Succeeded() != (tt.code == 0) {
				t.Errorf("Succeeded() = %v for exit %d", res.Succeeded(), tt.code)
			}
		})
	}
	// Nothing is left behind in the remote temp dir.
	if left := tempDirs(t, s); len(left) > len(before) {
		t.Errorf("temp dirs left on the host: %q (before: %q)", left, before)
	}
}

func TestOutputs(t *testing.T) {
	s := sshdtest.Start(t, 1)[0]
	ex := dial(t, s, options(t, s))
	res, _, _ := run(t, ex, executor.Command{
		Script: `echo "version=1.2.3" >> "$OPSBOOK_OUTPUT"
printf 'notes<<END\nline 1\nline 2\nEND\n' >> "$OPSBOOK_OUTPUT"
echo "version=1.2.4" >> "$OPSBOOK_OUTPUT"
test "$(stat -c %a "$(dirname "$OPSBOOK_OUTPUT")")" = 700 || { echo "temp dir not private" >&2; exit 1; }`,
		Env: map[string]string{"OPSBOOK_OUTPUT": "/tmp/ignored"},
	})
	want := map[string]string{"version": "1.2.4", "notes": "line 1\nline 2"}
	if res.ExitCode != 0 || fmt.Sprint(res.Outputs) != fmt.Sprint(want) {
		t.Errorf("exit %d outputs %q, want %q", res.ExitCode, res.Outputs, want)
	}
}

// TestTimeoutKillsRemoteProcessGroup checks on the server, through the
// system ssh client, that nothing of the command survives its timeout —
// including a child that ignores SIGTERM.
func TestTimeoutKillsRemoteProcessGroup(t *testing.T) {
	s := sshdtest.Start(t, 1)[0]
	ex := dial(t, s, options(t, s))
	n := 100000 + rand.IntN(800000)
	script := fmt.Sprintf("(trap '' TERM; exec sleep %d) &\nsleep %d\nwait\n", n, n+1)
	start := time.Now()
	var out bytes.Buffer
	res, err := ex.Run(context.Background(), executor.Command{Script: script, Timeout: time.Second, Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	if !res.TimedOut || res.ExitCode != -1 || res.Succeeded() {
		t.Errorf("result %+v, want timed out with exit -1", res)
	}
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("Run took %s after a 1s timeout", d)
	}
	ps, err := sshdtest.Run(s, fmt.Sprintf("pgrep -fa '[s]leep %d' || true; pgrep -fa '[s]leep %d' || true", n, n+1))
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(ps) != "" {
		t.Errorf("processes survived the timeout:\n%s", ps)
	}
}

func TestCancelKillsRemoteCommand(t *testing.T) {
	s := sshdtest.Start(t, 1)[0]
	ex := dial(t, s, options(t, s))
	n := 100000 + rand.IntN(800000)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(500*time.Millisecond, cancel)
	res, err := ex.Run(ctx, executor.Command{Script: fmt.Sprintf("sleep %d", n)})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Canceled || res.ExitCode != -1 {
		t.Errorf("result %+v, want cancelled", res)
	}
	ps, _ := sshdtest.Run(s, fmt.Sprintf("pgrep -fa '[s]leep %d' || true", n))
	if strings.TrimSpace(ps) != "" {
		t.Errorf("sleep survived the cancellation: %s", ps)
	}
}

func TestStreamsOutputWhileRunning(t *testing.T) {
	s := sshdtest.Start(t, 1)[0]
	ex := dial(t, s, options(t, s))
	first := make(chan struct{})
	w := &notifyWriter{onWrite: func() { close(first) }}
	done := make(chan struct{})
	go func() {
		defer close(done)
		ex.Run(context.Background(), executor.Command{Script: "echo started; sleep 3; echo finished", Stdout: w})
	}()
	select {
	case <-first:
	case <-done:
		t.Fatal("no output before the command finished")
	case <-time.After(2500 * time.Millisecond):
		t.Fatal("first line not streamed within 2.5s")
	}
	<-done
}

type notifyWriter struct {
	once    sync.Once
	onWrite func()
}

func (w *notifyWriter) Write(p []byte) (int, error) {
	w.once.Do(w.onWrite)
	return len(p), nil
}

func TestDroppedConnectionIsAnError(t *testing.T) {
	s := sshdtest.Start(t, 1)[0]
	ex := dial(t, s, options(t, s))
	// The wrapper (the script's parent) is a child of the sshd session
	// process; killing that drops the connection while the command runs.
	_, err := ex.Run(context.Background(), executor.Command{
		Script:  `kill -9 "$(cut -d' ' -f4 /proc/$PPID/stat)"; sleep 5`,
		Timeout: 20 * time.Second,
	})
	if err == nil || !strings.Contains(err.Error(), "connection lost") {
		t.Fatalf("err = %v, want connection lost", err)
	}
}

func TestHostKeyChecks(t *testing.T) {
	servers := sshdtest.Start(t, 2)
	t.Run("unknown", func(t *testing.T) {
		opts := options(t, servers[1]) // trusts only the other host
		_, err := sshexec.Dial(context.Background(), servers[0].Host, opts)
		var hk *sshexec.HostKeyError
		if !errors.As(err, &hk) || hk.Changed {
			t.Fatalf("err = %v, want unknown host key", err)
		}
		msg := err.Error()
		for _, want := range []string{
			ssh.FingerprintSHA256(servers[0].HostKey),
			fmt.Sprintf("ssh-keyscan -p %d 127.0.0.1 >> %s", servers[0].Host.Port, opts.KnownHostsFiles[0]),
			servers[0].KnownHostsLine(),
		} {
			if !strings.Contains(msg, want) {
				t.Errorf("message lacks %q:\n%s", want, msg)
			}
		}
		// Following the advice works.
		f, err := os.OpenFile(opts.KnownHostsFiles[0], os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintln(f, hk.Error()[strings.LastIndex(hk.Error(), "\n")+3:])
		f.Close()
		ex := dial(t, servers[0], opts)
		if res, _, _ := run(t, ex, executor.Command{Script: "true"}); res.ExitCode != 0 {
			t.Errorf("exit %d after accepting the key", res.ExitCode)
		}
	})
	t.Run("no-known-hosts-file-yet", func(t *testing.T) {
		opts := options(t, servers[0])
		opts.KnownHostsFiles = []string{filepath.Join(t.TempDir(), "ops", "known_hosts")}
		_, err := sshexec.Dial(context.Background(), servers[0].Host, opts)
		var hk *sshexec.HostKeyError
		if !errors.As(err, &hk) || hk.Changed || !strings.Contains(err.Error(), opts.KnownHostsFiles[0]) {
			t.Fatalf("err = %v, want unknown host key pointing at %s", err, opts.KnownHostsFiles[0])
		}
	})
	t.Run("changed", func(t *testing.T) {
		opts := options(t, servers...)
		old := servers[1].HostKey
		changed := sshdtest.ChangeHostKey(t, servers[1])
		_, err := sshexec.Dial(context.Background(), changed.Host, opts)
		var hk *sshexec.HostKeyError
		if !errors.As(err, &hk) || !hk.Changed {
			t.Fatalf("err = %v, want changed host key", err)
		}
		msg := err.Error()
		for _, want := range []string{"REMOTE HOST IDENTIFICATION HAS CHANGED", ssh.FingerprintSHA256(old), ssh.FingerprintSHA256(changed.HostKey), "ssh-keygen -R"} {
			if !strings.Contains(msg, want) {
				t.Errorf("message lacks %q:\n%s", want, msg)
			}
		}
	})
}

func TestUnreachableHosts(t *testing.T) {
	s := sshdtest.Start(t, 1)[0]
	opts := options(t, s)
	opts.ConnectTimeout = 700 * time.Millisecond

	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := closed.Addr().(*net.TCPAddr).Port
	closed.Close()

	// A listener that accepts and never speaks, like a hung sshd.
	hang, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hang.Close()
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := hang.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	}()

	tests := []struct {
		name    string
		host    runbook.Host
		want    string
		maxTime time.Duration
	}{
		{"dead", runbook.Host{Name: "dead", Address: "127.0.0.1", Port: closedPort}, "connection refused", 500 * time.Millisecond},
		{"hangs", runbook.Host{Name: "hung", Address: "127.0.0.1", Port: hang.Addr().(*net.TCPAddr).Port}, "no SSH handshake within 700ms", 3 * time.Second},
		{"no-address", runbook.Host{Name: "blank"}, "has no address", 100 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			_, err := sshexec.Dial(context.Background(), tt.host, opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), tt.host.Name) {
				t.Fatalf("err = %v, want %q naming the host", err, tt.want)
			}
			if d := time.Since(start); d > tt.maxTime {
				t.Errorf("failed after %s, want under %s", d, tt.maxTime)
			}
		})
	}
}

func TestBastion(t *testing.T) {
	servers := sshdtest.Start(t, 2)
	jump, target := servers[0].Host, servers[1].Host
	jump.Name, target.Name = "jump", "db1"
	target.Bastion = "jump"
	inventory := map[string]runbook.Host{"jump": jump, "db1": target}
	opts := options(t, servers...)
	opts.ResolveHost = func(name string) (runbook.Host, bool) { h, ok := inventory[name]; return h, ok }

	ex, err := sshexec.Dial(context.Background(), target, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	res, out, _ := run(t, ex, executor.Command{Script: "echo $SSH_CONNECTION"})
	if res.ExitCode != 0 || !strings.HasSuffix(strings.TrimSpace(out), strconv.Itoa(target.Port)) {
		t.Errorf("exit %d out %q, want a session on port %d", res.ExitCode, out, target.Port)
	}

	// The route really goes through the bastion: a dead bastion fails the
	// otherwise reachable target.
	deadJump := jump
	deadJump.Port = 1
	inventory["jump"] = deadJump
	if _, err := sshexec.Dial(context.Background(), target, opts); err == nil || !strings.Contains(err.Error(), "via bastion jump") {
		t.Errorf("err = %v, want a failure via bastion jump", err)
	}

	inventory["jump"] = runbook.Host{Name: "jump", Address: "127.0.0.1", Port: jump.Port, User: jump.User, Bastion: "db1"}
	if _, err := sshexec.Dial(context.Background(), target, opts); err == nil || !strings.Contains(err.Error(), "bastion loop") {
		t.Errorf("err = %v, want a bastion loop", err)
	}
	delete(inventory, "jump")
	if _, err := sshexec.Dial(context.Background(), target, opts); err == nil || !strings.Contains(err.Error(), `bastion "jump" is not in the environment's inventory`) {
		t.Errorf("err = %v, want unknown bastion", err)
	}
}

func TestCredentialErrors(t *testing.T) {
	s := sshdtest.Start(t, 1)[0]
	tests := []struct {
		name   string
		modify func(o *sshexec.Options)
		want   string
	}{
		{"missing-identity-file", func(o *sshexec.Options) { o.IdentityFiles = []string{"/nonexistent/id"} }, "read identity file"},
		{"wrong-key", func(o *sshexec.Options) {
			other := filepath.Join(t.TempDir(), "other")
			if out, err := osexec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other).CombinedOutput(); err != nil {
				t.Fatalf("ssh-keygen: %v: %s", err, out)
			}
			o.IdentityFiles = []string{other}
		}, "refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := options(t, s)
			tt.modify(&opts)
			_, err := sshexec.Dial(context.Background(), s.Host, opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

// tempDirs lists the executor's temp dirs on the host (the local executor's
// opsbook-step-* dirs share /tmp and are not counted).
func tempDirs(t *testing.T, s sshdtest.Server) []string {
	t.Helper()
	out, err := sshdtest.Run(s, `ls -d "${TMPDIR:-/tmp}"/opsbook-????????????????????????????????.* 2>/dev/null || true`)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(out)
}

func TestMergedStreamsKeepOrder(t *testing.T) {
	s := sshdtest.Start(t, 1)[0]
	ex := dial(t, s, options(t, s))
	var both bytes.Buffer
	res, err := ex.Run(context.Background(), executor.Command{
		Script: "for i in 1 2 3; do echo out$i; echo err$i >&2; done",
		Stdout: &both, Stderr: &both,
	})
	want := "out1\nerr1\nout2\nerr2\nout3\nerr3\n"
	if err != nil || res.ExitCode != 0 || both.String() != want {
		t.Errorf("err %v exit %d output %q, want %q", err, res.ExitCode, both.String(), want)
	}
}

func TestOutputWarnings(t *testing.T) {
	s := sshdtest.Start(t, 1)[0]
	ex := dial(t, s, options(t, s))
	res, _, _ := run(t, ex, executor.Command{Script: `echo "ok=1" >> "$OPSBOOK_OUTPUT"; echo "not an output" >> "$OPSBOOK_OUTPUT"`})
	if res.Outputs["ok"] != "1" || len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "line 2") {
		t.Errorf("outputs %q warnings %q, want ok=1 and a warning about line 2", res.Outputs, res.Warnings)
	}
}

// TestKeepAliveDetectsFrozenHost freezes the host's sshd session process
// (SIGSTOP, like a host that vanished without closing TCP): the running
// command must fail through the keepalive instead of hanging.
func TestKeepAliveDetectsFrozenHost(t *testing.T) {
	s := sshdtest.Start(t, 1)[0]
	opts := options(t, s)
	opts.KeepAlive = 200 * time.Millisecond
	ex := dial(t, s, opts)
	pidFile := filepath.Join(t.TempDir(), "sshd.pid")
	t.Cleanup(func() {
		if data, err := os.ReadFile(pidFile); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	start := time.Now()
	_, err := ex.Run(context.Background(), executor.Command{
		Script:  `p=$(cut -d' ' -f4 /proc/$PPID/stat); echo "$p" > ` + pidFile + `; kill -STOP "$p"; sleep 30`,
		Timeout: 60 * time.Second,
	})
	if err == nil || !strings.Contains(err.Error(), "connection lost") {
		t.Fatalf("err = %v, want connection lost", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("noticed the frozen host after %s", d)
	}
}

func TestAgentAuthentication(t *testing.T) {
	s := sshdtest.Start(t, 1)[0]
	sock := filepath.Join(t.TempDir(), "agent.sock")
	agent := osexec.Command("ssh-agent", "-D", "-a", sock)
	if err := agent.Start(); err != nil {
		t.Fatalf("start ssh-agent: %v", err)
	}
	t.Cleanup(func() { agent.Process.Kill(); agent.Wait() })
	for i := 0; ; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if i == 100 {
			t.Fatal("ssh-agent socket did not appear")
		}
		time.Sleep(20 * time.Millisecond)
	}
	add := osexec.Command("ssh-add", sshdtest.ClientKey(s))
	add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("ssh-add: %v: %s", err, out)
	}
	opts := options(t, s)
	opts.IdentityFiles = []string{filepath.Join(t.TempDir(), "none")} // an explicit missing file is an error…
	if _, err := sshexec.Dial(context.Background(), s.Host, opts); err == nil {
		t.Fatal("dial with a missing identity file succeeded")
	}
	opts.IdentityFiles = nil // …so rely on the agent alone, with an empty ~/.ssh
	opts.AgentSocket = sock
	t.Setenv("HOME", t.TempDir())
	ex := dial(t, s, opts)
	if res, _, _ := run(t, ex, executor.Command{Script: "true"}); res.ExitCode != 0 {
		t.Errorf("exit %d", res.ExitCode)
	}
}

// TestHostKeyAlgorithmFromKnownHosts: the server also has an ECDSA key,
// which the client would prefer by default; known_hosts lists only the
// ed25519 key, so that is the one to negotiate.
func TestHostKeyAlgorithmFromKnownHosts(t *testing.T) {
	ecdsaKey := filepath.Join(t.TempDir(), "ssh_host_ecdsa_key")
	if out, err := osexec.Command("ssh-keygen", "-q", "-t", "ecdsa", "-N", "", "-f", ecdsaKey).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	c, err := sshdtest.Launch(t.TempDir(), 1, sshdtest.Config{Extra: []string{sshdtest.SkipBashrc, "HostKey " + ecdsaKey}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	s := c.Servers[0]
	if s.HostKey.Type() != ssh.KeyAlgoED25519 {
		t.Fatalf("harness host key is %s", s.HostKey.Type())
	}
	ex := dial(t, s, options(t, s))
	if res, _, _ := run(t, ex, executor.Command{Script: "true"}); res.ExitCode != 0 {
		t.Errorf("exit %d", res.ExitCode)
	}
}
