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
	"strings"
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
	sess.Stdout = orDiscard(cmd.Stdout)
	sess.Stderr = orDiscard(cmd.Stderr)
	if err := sess.Start(bootstrapCommand(id)); err != nil {
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

	status, data, err := e.collect(id)
	if err != nil {
		return res, err
	}
	switch status {
	case "error":
		kind, msg, _ := strings.Cut(strings.TrimSpace(string(data)), "\n")
		if kind == "interpreter" {
			return res, fmt.Errorf("ssh %s: %w: %s", e.name, executor.ErrInterpreterNotFound, msg)
		}
		return res, fmt.Errorf("ssh %s: %s", e.name, msg)
	case "missing":
		if !killed {
			return res, fmt.Errorf("ssh %s: could not create a private temp dir on the host (mktemp -d in ${TMPDIR:-/tmp}); see the step's stderr", e.name)
		}
	}
	res.Outputs, res.Warnings = executor.ParseOutputs(data)
	if killed {
		return res, nil
	}

	var exitErr *ssh.ExitError
	switch {
	case waitErr == nil:
		res.ExitCode = 0
	case errors.As(waitErr, &exitErr):
		if exitErr.Signal() != "" {
			// The wrapper shell itself was killed on the host.
			res.ExitCode = -1
		} else {
			res.ExitCode = exitErr.ExitStatus()
		}
	default:
		return res, e.lost("wait for command", waitErr)
	}
	return res, nil
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
	sess.Stdout, sess.Stderr = &out, &out
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

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
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

// bootstrapCommand is the SSH command line: fixed text and a hex id only.
// It runs under the user's login shell, hence the sh -c.
func bootstrapCommand(id string) string {
	inner := `umask 077; d=$(mktemp -d "${TMPDIR:-/tmp}/opsbook-` + id + `.XXXXXX") || exit 125; cat > "$d/wrapper" && exec sh "$d/wrapper" "$d"`
	return "sh -c " + shellQuote(inner)
}

// wrapperScript is the program sent over stdin.
func wrapperScript(cmd executor.Command, id string) (string, error) {
	interp := cmd.Interpreter
	if interp == "" {
		interp = "sh"
	}
	if strings.ContainsAny(interp, " \t\n'\"\\$`;&|<>()") {
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
	b.WriteString("d=$1\nrm -f \"$d/wrapper\"\n")
	b.WriteString("fail() { printf '%s\\n%s\\n' \"$1\" \"$2\" > \"$d/error\"; exit 125; }\n")
	b.WriteString("cat > \"$d/script\" <<'" + delim + "'\n")
	b.WriteString(cmd.Script)
	if !strings.HasSuffix(cmd.Script, "\n") && cmd.Script != "" {
		b.WriteByte('\n')
	}
	b.WriteString(delim + "\n")
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
	if cmd.Stdout != nil && cmd.Stdout == cmd.Stderr {
		// One writer for both streams: merge them on the host, where the
		// order of writes is still known.
		b.WriteString("exec 2>&1\n")
	}
	b.WriteString("OPSBOOK_OUTPUT=\"$d/output\"; export OPSBOOK_OUTPUT; : > \"$OPSBOOK_OUTPUT\"\n")
	// setsid gives the command its own process group (and session), so the
	// kill session can signal all of it; the group leader records its id.
	// set -m is the fallback for hosts without util-linux.
	launch := `sh -c 'echo $$ > "$1/pgid"; shift; exec "$@"' opsbook "$d" ` + shellQuote(interp) + ` "$d/script" </dev/null &`
	b.WriteString("if command -v setsid >/dev/null 2>&1; then setsid " + launch + "\nelse set -m; " + launch + "\nfi\n")
	b.WriteString("wait $!\nst=$?\nrm -f \"$d/script\"\nexit $st\n")
	return b.String(), nil
}

func killCommand(id string, grace time.Duration) string {
	ticks := max(1, int(grace/(100*time.Millisecond)))
	// The command may not have started yet when the timeout fires (a busy
	// host is slow to fork): wait up to 30s for its group id, re-reading
	// the glob, unless the wrapper already failed before starting it.
	script := `i=0
while [ $i -lt 300 ]; do
for d in ` + tempGlob(id) + `; do
[ -d "$d" ] || continue
[ -f "$d/error" ] && exit 0
if [ -s "$d/pgid" ]; then
p=$(cat "$d/pgid")
kill -TERM -"$p" 2>/dev/null || exit 0
j=0; while kill -0 -"$p" 2>/dev/null && [ $j -lt ` + fmt.Sprint(ticks) + ` ]; do sleep 0.1; j=$((j+1)); done
kill -KILL -"$p" 2>/dev/null
exit 0
fi
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
if [ -f "$d/error" ]; then echo error; cat "$d/error"; else echo ok; cat "$d/output" 2>/dev/null; fi
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
