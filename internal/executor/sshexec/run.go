package sshexec

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/opsbook/opsbook/internal/executor"
	"golang.org/x/crypto/ssh"
)

// Run runs cmd on the host. See the package comment for how.
func (e *Executor) Run(ctx context.Context, cmd executor.Command) (executor.Result, error) {
	start := time.Now()
	res := executor.Result{ExitCode: -1}
	id, err := runID()
	if err != nil {
		return res, err
	}
	wrapper, err := wrapperScript(cmd, id)
	if err != nil {
		return res, fmt.Errorf("ssh %s: %w", e.name, err)
	}
	if ctx.Err() != nil {
		res.Canceled = true
		return res, nil
	}
	select {
	case e.slots <- struct{}{}:
		defer func() { <-e.slots }()
	case <-ctx.Done():
		res.Canceled = true
		return res, nil
	case <-e.done:
		return res, e.lost("start command", io.EOF)
	}
	sess, err := e.client.NewSession()
	if err != nil {
		return res, e.lost("open session", err)
	}
	defer sess.Close()
	sess.Stdin = strings.NewReader(wrapper)
	sess.Stdout, sess.Stderr = outputWriters(cmd.Stdout, cmd.Stderr)
	if err := sess.Start(bootstrapCommand()); err != nil {
		return res, e.lost("start command", err)
	}
	waited := make(chan error, 1)
	go func() { waited <- sess.Wait() }()

	var timeout <-chan time.Time
	if cmd.Timeout > 0 {
		t := time.NewTimer(cmd.Timeout)
		defer t.Stop()
		timeout = t.C
	}
	var waitErr error
	killed := false
	select {
	case waitErr = <-waited:
	case <-timeout:
		res.TimedOut, killed = true, true
	case <-ctx.Done():
		res.Canceled, killed = true, true
	}
	if killed {
		// ctx may be cancelled already: the kill gets its own deadline.
		if err := e.killGroup(id); err != nil {
			return res, err
		}
		select {
		case <-waited:
		case <-time.After(10 * time.Second):
			// Something outside the process group still holds the
			// session's output open; stop waiting for it.
			sess.Close()
		}
	}
	res.Duration = time.Since(start)

	var exitErr *ssh.ExitError
	ambiguous := false
	switch {
	case killed:
		// Collect to remove the temp dir; outputs written before the
		// kill are still reported.
	case waitErr == nil:
		res.ExitCode = 0
		return res, nil
	case errors.As(waitErr, &exitErr) && exitErr.Signal() == string(collectSignal):
		// The wrapper kept its temp dir: outputs, or a setup error.
	case errors.As(waitErr, &exitErr) && exitErr.Signal() != "":
		return res, fmt.Errorf("ssh %s: the command's wrapper shell was killed on the host by SIG%s; check the host", e.name, exitErr.Signal())
	case errors.As(waitErr, &exitErr) && exitErr.ExitStatus() == 128+12:
		// A login shell that forks instead of exec'ing sh reports the
		// SIGUSR2 (12 on Linux) as status 140; the collect tells them apart.
		res.ExitCode = exitErr.ExitStatus()
		ambiguous = true
	case errors.As(waitErr, &exitErr):
		res.ExitCode = exitErr.ExitStatus()
		if res.ExitCode == exitNoTempDir {
			return res, fmt.Errorf("ssh %s: could not create a private temp dir on the host (mktemp -d in ${TMPDIR:-/tmp}); free space or fix TMPDIR there, see the step's stderr", e.name)
		}
		return res, nil
	default:
		return res, e.lost("wait for command", waitErr)
	}

	status, data, err := e.collect(id)
	if err != nil {
		return res, err
	}
	head, body, _ := strings.Cut(string(data), "\n")
	switch status {
	case "error":
		kind, msg, _ := strings.Cut(strings.TrimSpace(string(data)), "\n")
		if kind == "interpreter" {
			return res, fmt.Errorf("ssh %s: %w: %s", e.name, executor.ErrInterpreterNotFound, msg)
		}
		return res, fmt.Errorf("ssh %s: %s", e.name, msg)
	case "missing":
		if ambiguous {
			return res, nil // a real exit status 140
		}
		if !killed {
			return res, fmt.Errorf("ssh %s: the command's temp dir vanished on the host before its outputs were read", e.name)
		}
		return res, nil
	case "ok":
		if !killed {
			code, err := strconv.Atoi(head)
			if err != nil {
				return res, fmt.Errorf("ssh %s: unreadable exit status %q from the host", e.name, head)
			}
			res.ExitCode = code
		}
		res.Outputs, res.Warnings = executor.ParseOutputs([]byte(body))
		return res, nil
	default:
		return res, fmt.Errorf("ssh %s: unexpected reply %q while reading outputs", e.name, status)
	}
}

// lost describes a failure of the connection itself: the command may or
// may not have run, and it is never reported as success.
func (e *Executor) lost(what string, err error) error {
	var missing *ssh.ExitMissingError
	if errors.As(err, &missing) || errors.Is(err, io.EOF) || e.isClosed() {
		return fmt.Errorf("ssh %s: %s: connection lost before the command reported its exit status; check the host and run the step again if it is safe", e.name, what)
	}
	return fmt.Errorf("ssh %s: %s: %w", e.name, what, err)
}

// killGroup runs the kill script in a second session.
func (e *Executor) killGroup(id string) error {
	sess, err := e.client.NewSession()
	if err != nil {
		return e.lost("open session to kill the timed-out command", err)
	}
	defer sess.Close()
	var out bytes.Buffer
	sess.Stdout, sess.Stderr = outputWriters(&out, &out)
	done := make(chan error, 1)
	go func() { done <- sess.Run(killCommand(id, e.grace)) }()
	select {
	case err = <-done:
	case <-time.After(e.grace + 45*time.Second):
		return fmt.Errorf("ssh %s: killing the timed-out command did not finish; it may still be running on the host", e.name)
	}
	if err != nil {
		return fmt.Errorf("ssh %s: kill the timed-out command: %v: %s", e.name, err, bytes.TrimSpace(out.Bytes()))
	}
	return nil
}

// collect reads the outputs file and removes the temp dir. The first line
// of its output is a status word.
func (e *Executor) collect(id string) (status string, data []byte, err error) {
	sess, err := e.client.NewSession()
	if err != nil {
		return "", nil, e.lost("open session to read outputs", err)
	}
	defer sess.Close()
	var out bytes.Buffer
	sess.Stdout = &limitedBuffer{b: &out, n: executor.MaxOutputsSize + 64*1024}
	if err := sess.Run(collectCommand(id)); err != nil {
		return "", nil, e.lost("read outputs", err)
	}
	status, rest, _ := strings.Cut(out.String(), "\n")
	return status, []byte(rest), nil
}

// outputWriters adapts the command's writers to the session, which copies
// stdout and stderr from two goroutines with io.Copy. The adapters hide
// io.ReaderFrom (two concurrent ReadFrom calls corrupt a shared
// bytes.Buffer) and serialise writes when both streams share a writer.
func outputWriters(stdout, stderr io.Writer) (io.Writer, io.Writer) {
	if executor.SameWriter(stdout, stderr) {
		w := &lockedWriter{w: stdout}
		return w, w
	}
	wrap := func(w io.Writer) io.Writer {
		if w == nil {
			return io.Discard
		}
		return writerOnly{w}
	}
	return wrap(stdout), wrap(stderr)
}

type writerOnly struct{ io.Writer }

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// limitedBuffer keeps the first n bytes; an oversized outputs file then
// fails ParseOutputs' size check with a warning instead of exhausting memory.
type limitedBuffer struct {
	b *bytes.Buffer
	n int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.n - l.b.Len(); room > 0 {
		l.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func runID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random run id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// shellQuote makes s one literal word for any POSIX shell: single quotes
// keep everything (quotes, $(), backticks, newlines) literal, and a single
// quote itself is closed, escaped and reopened.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// tempGlob matches the run's temp dir; the random id makes it unique, so
// the kill and collect sessions find it without being told its name.
func tempGlob(id string) string {
	return `"${TMPDIR:-/tmp}"/opsbook-` + id + `.*`
}

const (
	// collectSignal is how the wrapper says "read my temp dir": it kills
	// itself with SIGUSR2 after saving its exit status there, and sshd
	// reports the signal. The common case — no outputs, no setup error —
	// then needs no second session.
	collectSignal = ssh.SIGUSR2
	// exitNoTempDir is the wrapper's status when mktemp fails.
	exitNoTempDir = 125
)

// bootstrapCommand is the SSH command line: fixed text only. The login
// shell execs sh, which reads the wrapper from stdin.
func bootstrapCommand() string {
	return "exec sh -s"
}

// wrapperScript is the program sent over stdin. It runs the script, read
// by the interpreter from a here-document on fd 3, in a new process group
// whose id it records for the kill session.
func wrapperScript(cmd executor.Command, id string) (string, error) {
	interp := cmd.Interpreter
	if interp == "" {
		interp = "sh"
	}
	if strings.ContainsAny(interp, " \t\n'\"\\$`;&|<>()*?[]#~=%") {
		return "", fmt.Errorf("interpreter %q is not a plain program name; name the program (sh, bash, python3) in the fence", interp)
	}
	if strings.ContainsRune(cmd.Script, 0) {
		return "", errors.New("the script contains a NUL byte; remove it")
	}
	delim := "OPSBOOK_SCRIPT_" + id
	for strings.Contains(cmd.Script, delim) {
		delim += "_"
	}
	var b strings.Builder
	b.WriteString("umask 077\n")
	fmt.Fprintf(&b, "d=$(mktemp -d \"${TMPDIR:-/tmp}/opsbook-%s.XXXXXX\") || exit %d\n", id, exitNoTempDir)
	fmt.Fprintf(&b, "keep() { printf '%%s\\n' \"$1\" > \"$d/status\"; kill -%s $$; exit 126; }\n", collectSignal)
	b.WriteString("fail() { printf '%s\\n%s\\n' \"$1\" \"$2\" > \"$d/error\"; keep 126; }\n")
	fmt.Fprintf(&b, "command -v %s >/dev/null 2>&1 || fail interpreter %s\n", shellQuote(interp),
		shellQuote(fmt.Sprintf("interpreter %q is not installed on the host (not in PATH); install it there or use another fence language", interp)))
	if cmd.Dir != "" {
		fmt.Fprintf(&b, "cd %s 2>/dev/null || fail dir %s\n", shellQuote(cmd.Dir),
			shellQuote(fmt.Sprintf("working directory %q does not exist on the host or is not accessible", cmd.Dir)))
	}
	names := make([]string, 0, len(cmd.Env))
	for k := range cmd.Env {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		v := cmd.Env[k]
		if !validEnvName(k) {
			return "", fmt.Errorf("environment variable name %q is not valid; use letters, digits and underscores", k)
		}
		if k == "OPSBOOK_OUTPUT" {
			continue // set by the executor
		}
		if strings.ContainsRune(v, 0) {
			return "", fmt.Errorf("value of %s contains a NUL byte, which no environment can hold", k)
		}
		fmt.Fprintf(&b, "export %s=%s\n", k, shellQuote(v))
	}
	b.WriteString("OPSBOOK_OUTPUT=\"$d/output\"; export OPSBOOK_OUTPUT; : > \"$OPSBOOK_OUTPUT\"\n")
	if executor.SameWriter(cmd.Stdout, cmd.Stderr) {
		// One writer for both streams: merge them on the host, where the
		// order of writes is still known.
		b.WriteString("exec 2>&1\n")
	}
	// Not being a group leader (no job control here), setsid calls
	// setsid() without forking, so $! is the new group's id. set -m is the
	// fallback for hosts without util-linux.
	b.WriteString("if command -v setsid >/dev/null 2>&1; then launch=setsid; else set -m; launch=; fi\n")
	launch := shellQuote(interp)
	for _, opt := range executor.ShellOptions(interp, cmd.NoErrexit) {
		launch += " " + shellQuote(opt)
	}
	fmt.Fprintf(&b, "$launch %s /dev/fd/3 </dev/null 3<<'%s' &\n", launch, delim)
	b.WriteString(cmd.Script)
	if !strings.HasSuffix(cmd.Script, "\n") && cmd.Script != "" {
		b.WriteByte('\n')
	}
	b.WriteString(delim + "\n")
	b.WriteString("echo $! > \"$d/pgid\"\n")
	b.WriteString("wait $!\nst=$?\n")
	b.WriteString("[ -s \"$OPSBOOK_OUTPUT\" ] && keep $st\n")
	b.WriteString("rm -rf \"$d\"\nexit $st\n")
	return b.String(), nil
}

func killCommand(id string, grace time.Duration) string {
	ticks := max(1, int(grace/(100*time.Millisecond)))
	// The command may not have started yet when the timeout fires (a busy
	// host is slow to fork): wait up to 30s for its pid, re-reading the
	// glob, unless the wrapper already failed before starting it. The pid
	// becomes a group id only once setsid has run: until then, retry.
	script := `i=0
while [ $i -lt 300 ]; do
for d in ` + tempGlob(id) + `; do
[ -d "$d" ] || continue
[ -f "$d/error" ] && exit 0
[ -s "$d/pgid" ] || continue
p=$(cat "$d/pgid")
if kill -TERM -"$p" 2>/dev/null; then
j=0; while kill -0 -"$p" 2>/dev/null && [ $j -lt ` + fmt.Sprint(ticks) + ` ]; do sleep 0.1; j=$((j+1)); done
kill -KILL -"$p" 2>/dev/null
exit 0
fi
kill -0 "$p" 2>/dev/null || exit 0
done
sleep 0.1; i=$((i+1))
done
echo "the command's process group never appeared" >&2
exit 1`
	return "sh -c " + shellQuote(script)
}

func collectCommand(id string) string {
	script := `for d in ` + tempGlob(id) + `; do
[ -d "$d" ] || break
if [ -f "$d/error" ]; then echo error; cat "$d/error"; else echo ok; cat "$d/status" 2>/dev/null || echo; cat "$d/output" 2>/dev/null; fi
rm -rf "$d"
exit 0
done
echo missing`
	return "sh -c " + shellQuote(script)
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || (i > 0 && '0' <= c && c <= '9') {
			continue
		}
		return false
	}
	return true
}
