package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// LocalOptions configures the local executor. The zero value is usable.
type LocalOptions struct {
	// Dir is the working directory of commands whose Command.Dir is "";
	// "" means the current directory of this process.
	Dir string
	// BaseEnv is the environment every command starts from, as
	// "NAME=value" strings. nil means this process's environment without
	// any OPSBOOK_* variable: those are parameters (OPSBOOK_PARAM_*, some
	// secret), opsbook's own keys and tokens, or built-ins of an enclosing
	// run that would be wrong for this one. The engine passes what a command
	// should see in Command.Env.
	BaseEnv []string
	// KillGrace is how long a process group has to exit after SIGTERM
	// before it gets SIGKILL; 0 means 5 s.
	KillGrace time.Duration
	// PipeGrace is how long output is still read after the command has
	// exited while a background process it left holds stdout or stderr
	// open; then the pipes are closed so Run returns. 0 means 1 s.
	PipeGrace time.Duration
	// TempDir is where the executor's private 0700 directory, holding each
	// command's script and $OPSBOOK_OUTPUT file while it runs, is created;
	// "" means os.TempDir(). Close removes the directory.
	TempDir string
}

// Local runs commands on this machine, each in its own process group.
type Local struct {
	opts    LocalOptions
	baseEnv []string
	path    string // PATH of baseEnv, for finding interpreters

	mu           sync.Mutex
	interpreters map[string]string // "PATH\x00name" → absolute path
	dir          string            // private directory, made on first use
	devNull      *os.File          // every command's stdin, opened on first use
	closed       bool
	seq          atomic.Uint64 // names each command's files in dir
}

// NewLocal returns an executor for the local host.
func NewLocal(opts LocalOptions) *Local {
	if opts.KillGrace <= 0 {
		opts.KillGrace = 5 * time.Second
	}
	if opts.PipeGrace <= 0 {
		opts.PipeGrace = time.Second
	}
	base := opts.BaseEnv
	if base == nil {
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "OPSBOOK_") {
				base = append(base, kv)
			}
		}
	}
	l := &Local{opts: opts, baseEnv: base, interpreters: make(map[string]string)}
	for _, kv := range base {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			l.path = v
		}
	}
	return l
}

var _ Executor = (*Local)(nil)

// Host implements Executor.
func (l *Local) Host() string { return "local" }

// Close implements Executor: it removes the private directory. Run fails
// after Close.
func (l *Local) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	if l.devNull != nil {
		l.devNull.Close()
		l.devNull = nil
	}
	if l.dir == "" {
		return nil
	}
	dir := l.dir
	l.dir = ""
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove local executor directory: %w", err)
	}
	return nil
}

// privateDir returns the executor's 0700 directory, creating it when
// needed. One directory for all commands spares a mkdir and a rmdir per
// step, a noticeable part of a step's cost on a journaling file system.
func (l *Local) privateDir(recreate bool) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return "", errors.New("local executor is closed")
	}
	if l.dir != "" && !recreate {
		return l.dir, nil
	}
	dir, err := os.MkdirTemp(l.opts.TempDir, "opsbook-exec-")
	if err != nil {
		return "", fmt.Errorf("create private directory for commands: %w; check that %s is writable", err, tempDirName(l.opts.TempDir))
	}
	l.dir = dir
	return dir, nil
}

// writeScript writes the script to a new 0600 file in the private
// directory and returns its path and the path for $OPSBOOK_OUTPUT.
func (l *Local) writeScript(script, ext string) (scriptPath, outputPath string, err error) {
	dir, name, err := l.commandFiles()
	if err != nil {
		return "", "", err
	}
	scriptPath = filepath.Join(dir, name+ext)
	err = writeNewFile(scriptPath, script)
	if errors.Is(err, os.ErrNotExist) {
		// Something cleaned the temporary directory away under us.
		if dir, err = l.privateDir(true); err != nil {
			return "", "", err
		}
		scriptPath = filepath.Join(dir, name+ext)
		err = writeNewFile(scriptPath, script)
	}
	if err != nil {
		return "", "", fmt.Errorf("write command script: %w", err)
	}
	// The output file is not created in advance: `>>` and open(…, "a")
	// create it, and most steps publish nothing.
	return scriptPath, filepath.Join(dir, name+".out"), nil
}

// commandFiles returns the private directory, checked to exist still
// (recreated when something cleaned it away), and a fresh base name for
// one command's files in it.
func (l *Local) commandFiles() (dir, name string, err error) {
	dir, err = l.privateDir(false)
	if err != nil {
		return "", "", err
	}
	if _, err := os.Lstat(dir); errors.Is(err, os.ErrNotExist) {
		if dir, err = l.privateDir(true); err != nil {
			return "", "", err
		}
	}
	return dir, "step-" + strconv.FormatUint(l.seq.Add(1), 10), nil
}

// stdin is /dev/null, opened once for all commands rather than by os/exec
// for each.
func (l *Local) stdin() (*os.File, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, errors.New("local executor is closed")
	}
	if l.devNull == nil {
		f, err := os.Open(os.DevNull)
		if err != nil {
			return nil, fmt.Errorf("open %s for the command's stdin: %w", os.DevNull, err)
		}
		l.devNull = f
	}
	return l.devNull, nil
}

// pipedShells read their script from /dev/fd/3, a pipe, instead of a file
// written for each command: creating and removing a file costs a journaled
// file system more than the shell itself takes to start. They are shells
// that read a script file as a stream; other interpreters (python's
// tracebacks, pwsh's extension check, node's realpath) want a real file.
var pipedShells = map[string]bool{"sh": true, "bash": true, "dash": true, "ash": true, "ksh": true, "zsh": true}

// maxPipedScript is the largest script sent through a pipe; a larger one
// is written to a file (the pipe is filled before the shell starts, and a
// pipe holds 64 KiB, or 4 KiB once the user has many pipes).
const maxPipedScript = 4 << 10

// haveDevFD reports whether /dev/fd/N names this process's descriptors (a
// system without /proc mounted may lack it): then scripts are files.
var haveDevFD = sync.OnceValue(func() bool {
	_, err := os.Stat("/dev/fd/0")
	return err == nil
})

// pipeScript returns the read end of a pipe that holds the whole script,
// its write end closed, for the command's fd 3. Neither end is the
// poller's business: the script fits in the pipe (maxPipedScript), so the
// write does not block, and only the command reads.
func pipeScript(script string) (*os.File, error) {
	var p [2]int
	if err := syscall.Pipe2(p[:], syscall.O_CLOEXEC); err != nil {
		return nil, fmt.Errorf("pass the command script: %w", err)
	}
	var err error
	for b := []byte(script); len(b) > 0 && err == nil; {
		var n int
		n, err = syscall.Write(p[1], b)
		if err == syscall.EINTR {
			err = nil
		}
		b = b[max(n, 0):]
	}
	syscall.Close(p[1])
	if err != nil {
		syscall.Close(p[0])
		return nil, fmt.Errorf("pass the command script: %w", err)
	}
	return os.NewFile(uintptr(p[0]), "|script"), nil // blocking: os.NewFile leaves it out of the poller
}

// outputPipe returns a pipe for one of the command's output streams: the
// read end non-blocking, in Go's poller, for the copier; the write end,
// the command's, blocking and left out of the poller. os.Pipe would make
// both non-blocking and register both, and starting the command would
// switch the command's end back, about ten system calls more per stream.
func outputPipe() (r, w *os.File, err error) {
	var p [2]int
	if err := syscall.Pipe2(p[:], syscall.O_CLOEXEC); err != nil {
		return nil, nil, err
	}
	if err := syscall.SetNonblock(p[0], true); err != nil {
		syscall.Close(p[0])
		syscall.Close(p[1])
		return nil, nil, err
	}
	return os.NewFile(uintptr(p[0]), "|0"), os.NewFile(uintptr(p[1]), "|1"), nil
}

func writeNewFile(path, content string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.WriteString(content)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Run implements Executor. The script is written to a 0600 file in the
// executor's private 0700 directory and run as `INTERPRETER [OPTIONS] FILE`
// (OPTIONS from ShellOptions), so nothing is
// interpolated, with stdin from /dev/null. When the command exits normally,
// processes it started in the background are left running (a step may
// start a daemon) but their output is no longer read after PipeGrace; on
// timeout or cancellation the whole process group is stopped.
func (l *Local) Run(ctx context.Context, c Command) (Result, error) {
	if err := ctx.Err(); err != nil {
		return Result{ExitCode: -1, Canceled: true}, nil
	}
	interpreter := c.Interpreter
	if interpreter == "" {
		interpreter = "sh"
	}
	pathEnv := l.path
	if v, ok := c.Env["PATH"]; ok {
		pathEnv = v
	}
	interpreterPath, err := l.lookInterpreter(interpreter, pathEnv)
	if err != nil {
		return Result{}, err
	}
	for name := range c.Env {
		if name == "" || strings.ContainsAny(name, "=\x00") {
			return Result{}, fmt.Errorf("environment variable name %q is not valid: use letters, digits and underscores", name)
		}
	}

	// The script is a file of its own, or for a shell the other end of a
	// pipe on fd 3; either way it is read as data, never interpolated.
	var scriptPath, outputPath string
	var extra []*os.File
	if pipedShells[filepath.Base(interpreter)] && len(c.Script) <= maxPipedScript && haveDevFD() {
		dir, name, err := l.commandFiles()
		if err != nil {
			return Result{}, err
		}
		script, err := pipeScript(c.Script)
		if err != nil {
			return Result{}, err
		}
		defer script.Close()
		extra = []*os.File{script}
		scriptPath, outputPath = "/dev/fd/3", filepath.Join(dir, name+".out")
	} else {
		scriptPath, outputPath, err = l.writeScript(c.Script, scriptExtension(interpreter))
		if err != nil {
			return Result{}, err
		}
		defer os.Remove(scriptPath)
	}

	cmd := &exec.Cmd{
		Path:        interpreterPath,
		Args:        append(append([]string{interpreter}, ShellOptions(interpreter, c.NoErrexit)...), scriptPath),
		Env:         l.environment(c.Env, outputPath),
		Dir:         c.Dir,
		ExtraFiles:  extra,
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
	}
	if cmd.Dir == "" {
		cmd.Dir = l.opts.Dir
	}
	if cmd.Stdin, err = l.stdin(); err != nil {
		return Result{}, err
	}
	streams, err := openStreams(cmd, c.Stdout, c.Stderr)
	if err != nil {
		return Result{}, err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		streams.closeAll()
		return Result{}, fmt.Errorf("start %s on local host: %w", interpreter, err)
	}
	streams.startCopying()
	if c.Started != nil {
		c.Started(cmd.Process.Pid) // Setpgid: the pid is the group's id
	}

	exited := make(chan struct{})
	go func() {
		cmd.Wait() // the exit status is read from cmd.ProcessState below
		close(exited)
	}()
	var timeout <-chan time.Time
	if c.Timeout > 0 {
		timer := time.NewTimer(c.Timeout)
		defer timer.Stop()
		timeout = timer.C
	}
	res := Result{}
	select {
	case <-exited:
	case <-timeout:
		res.TimedOut = true
	case <-ctx.Done():
		res.Canceled = true
	}
	if res.TimedOut || res.Canceled {
		l.stopGroup(cmd.Process.Pid, exited)
	}
	streams.drain(l.opts.PipeGrace)
	res.Duration = time.Since(start)

	res.ExitCode = cmd.ProcessState.ExitCode()
	if res.TimedOut || res.Canceled {
		res.ExitCode = -1
	}
	res.Warnings = streams.writeErrors()
	data, exists, err := readOutputsFile(outputPath)
	if err != nil {
		res.Warnings = append(res.Warnings, err.Error())
	}
	if exists {
		os.Remove(outputPath)
	}
	var outputWarnings []string
	res.Outputs, outputWarnings = ParseOutputs(data)
	res.Warnings = append(res.Warnings, outputWarnings...)
	return res, nil
}

// readOutputsFile reads at most MaxOutputsSize+1 bytes, enough for
// ParseOutputs to notice an oversized file without loading all of it, and
// reports whether the file exists (most commands publish nothing, and then
// there is nothing to remove).
func readOutputsFile(path string) (data []byte, exists bool, err error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil // never written, or the command removed it: no outputs
	}
	if err != nil {
		return nil, true, fmt.Errorf("read $OPSBOOK_OUTPUT: %w", err)
	}
	defer f.Close()
	data, err = io.ReadAll(io.LimitReader(f, MaxOutputsSize+1))
	if err != nil {
		return nil, true, fmt.Errorf("read $OPSBOOK_OUTPUT: %w", err)
	}
	return data, true, nil
}

// stopGroup sends SIGTERM to the process group led by pid, waits up to
// KillGrace for every member to exit, then sends SIGKILL. Members that
// ignore SIGTERM therefore cannot keep Run waiting.
func (l *Local) stopGroup(pid int, exited <-chan struct{}) {
	// Errors are ignored: ESRCH means the group is already gone.
	syscall.Kill(-pid, syscall.SIGTERM)
	deadline := time.NewTimer(l.opts.KillGrace)
	defer deadline.Stop()
	poll := time.NewTicker(10 * time.Millisecond)
	defer poll.Stop()
	leaderDone := false
	for {
		select {
		case <-exited:
			leaderDone = true
			exited = nil
		case <-poll.C:
			// Signal 0 probes whether any member is left. The leader is
			// a zombie until reaped, so this only helps once it is.
			if leaderDone && syscall.Kill(-pid, 0) == syscall.ESRCH {
				return
			}
		case <-deadline.C:
			syscall.Kill(-pid, syscall.SIGKILL)
			if !leaderDone {
				<-exited
			}
			return
		}
	}
}

// environment is the base environment, then Command.Env in name order,
// then OPSBOOK_OUTPUT; os/exec keeps the last value of a repeated name.
func (l *Local) environment(extra map[string]string, outputPath string) []string {
	env := make([]string, 0, len(l.baseEnv)+len(extra)+1)
	env = append(env, l.baseEnv...)
	names := make([]string, 0, len(extra))
	for name := range extra {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		env = append(env, name+"="+extra[name])
	}
	return append(env, "OPSBOOK_OUTPUT="+outputPath)
}

// lookInterpreter finds an interpreter in pathEnv, remembering the answer:
// a step runs the same few interpreters many times.
func (l *Local) lookInterpreter(name, pathEnv string) (string, error) {
	key := pathEnv + "\x00" + name
	l.mu.Lock()
	found, ok := l.interpreters[key]
	l.mu.Unlock()
	if ok {
		return found, nil
	}
	found, err := findExecutable(name, pathEnv)
	if err != nil {
		return "", fmt.Errorf("interpreter %q not found on local host (%v): install it or change the block's language: %w", name, err, ErrInterpreterNotFound)
	}
	l.mu.Lock()
	l.interpreters[key] = found
	l.mu.Unlock()
	return found, nil
}

// findExecutable is exec.LookPath over a given PATH value instead of this
// process's, because the command's environment decides where it looks.
func findExecutable(name, pathEnv string) (string, error) {
	if strings.Contains(name, "/") {
		if err := isExecutable(name); err != nil {
			return "", err
		}
		return name, nil
	}
	for _, dir := range filepath.SplitList(pathEnv) {
		if dir == "" || !filepath.IsAbs(dir) {
			continue // a relative PATH entry would depend on the working directory
		}
		candidate := filepath.Join(dir, name)
		if isExecutable(candidate) == nil {
			return candidate, nil
		}
	}
	return "", errors.New("not in PATH")
}

func isExecutable(path string) error {
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	if info.IsDir() || info.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", path)
	}
	return nil
}

// scriptExtension is the file name suffix an interpreter insists on.
func scriptExtension(interpreter string) string {
	switch filepath.Base(interpreter) {
	case "pwsh", "powershell":
		return ".ps1" // pwsh refuses -File arguments without it
	}
	return ""
}

func tempDirName(dir string) string {
	if dir == "" {
		return os.TempDir()
	}
	return dir
}

// streams owns the read ends of the command's output pipes. os/exec would
// copy them itself, but its Wait then waits for every process holding the
// write ends, which a background grandchild can do forever.
type streams struct {
	readers []*os.File
	writers []*os.File // child's ends, closed in the parent after Start
	dests   []io.Writer
	names   []string        // "stdout", "stderr" or "output" when shared
	errs    []error         // first write error per stream, set by its copier
	done    []chan struct{} // closed by each copier at end of file
}

func openStreams(cmd *exec.Cmd, stdout, stderr io.Writer) (*streams, error) {
	s := &streams{}
	attach := func(w io.Writer, name string) (*os.File, error) {
		if w == nil {
			return nil, nil // os/exec connects a nil stream to /dev/null
		}
		r, pw, err := outputPipe()
		if err != nil {
			s.closeAll()
			return nil, fmt.Errorf("create output pipe: %w", err)
		}
		s.readers = append(s.readers, r)
		s.writers = append(s.writers, pw)
		s.dests = append(s.dests, w)
		s.names = append(s.names, name)
		s.errs = append(s.errs, nil)
		return pw, nil
	}
	out, err := attach(stdout, "stdout")
	if err != nil {
		return nil, err
	}
	if out != nil {
		cmd.Stdout = out
	}
	if SameWriter(stdout, stderr) {
		// One pipe keeps the two streams in the order they were written
		// and spares the writer concurrent calls.
		cmd.Stderr = cmd.Stdout
		s.names[0] = "output"
		return s, nil
	}
	errPipe, err := attach(stderr, "stderr")
	if err != nil {
		return nil, err
	}
	if errPipe != nil {
		cmd.Stderr = errPipe
	}
	return s, nil
}

var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 32*1024); return &b }}

// Output that fills a copy buffer in one read is pouring in (`yes`, a
// dump, a log being catted): the copier then widens the pipe to
// widePipe and reads widePipe at a time, so the command and the
// recorder meet once per megabyte instead of once per 32 KiB. Most steps
// print a few lines and never pay for it.
const widePipe = 1 << 20

var wideBuffers = sync.Pool{New: func() any { b := make([]byte, widePipe); return &b }}

// WidenPipe enlarges a pipe's buffer (F_SETPIPE_SZ); it keeps its size when the
// system refuses (an unprivileged user over /proc/sys/fs/pipe-max-size or
// pipe-user-pages-soft).
func WidenPipe(r *os.File) {
	if rc, err := r.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) {
			const fSetPipeSize = 1031 // F_SETPIPE_SZ, fcntl(2)
			syscall.Syscall(syscall.SYS_FCNTL, fd, fSetPipeSize, widePipe)
		})
	}
}

func (s *streams) startCopying() {
	for _, w := range s.writers {
		w.Close()
	}
	s.writers = nil
	for i, r := range s.readers {
		done := make(chan struct{})
		s.done = append(s.done, done)
		go func(i int, r *os.File, w io.Writer) {
			defer close(done)
			buf, pool := copyBuffers.Get().(*[]byte), &copyBuffers
			defer func() { pool.Put(buf) }()
			for {
				n, err := r.Read(*buf)
				if n > 0 {
					// A failing destination must not block the command on
					// a full pipe: keep reading, stop writing, report it.
					if w != nil {
						if _, werr := w.Write((*buf)[:n]); werr != nil {
							s.errs[i] = werr
							w = nil
						}
					}
				}
				if err != nil {
					return
				}
				if n == len(*buf) && pool == &copyBuffers {
					WidenPipe(r)
					copyBuffers.Put(buf)
					buf, pool = wideBuffers.Get().(*[]byte), &wideBuffers
				}
			}
		}(i, r, s.dests[i])
	}
}

// drain waits for the copiers to reach end of file, or closes the pipes
// after grace so a background process holding them cannot block Run.
func (s *streams) drain(grace time.Duration) {
	var expired <-chan time.Time
	for _, done := range s.done {
		select {
		case <-done:
			continue
		default:
		}
		if expired == nil {
			timer := time.NewTimer(grace)
			defer timer.Stop()
			expired = timer.C
		}
		select {
		case <-done:
		case <-expired:
			for _, r := range s.readers {
				r.Close() // unblocks the pending Read: pipes use the poller
			}
			<-done
		}
	}
	s.closeAll()
}

// writeErrors describes destinations that failed; call after drain.
func (s *streams) writeErrors() []string {
	var out []string
	for i, err := range s.errs {
		if err != nil {
			out = append(out, fmt.Sprintf("recording the command's %s failed, later output was dropped: %v", s.names[i], err))
		}
	}
	return out
}

func (s *streams) closeAll() {
	for _, f := range s.readers {
		f.Close()
	}
	for _, f := range s.writers {
		f.Close()
	}
}
