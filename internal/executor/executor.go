// Package executor runs one step's command on one host. The engine speaks
// only this interface; the local implementation is in this package and the
// SSH one in internal/executor/sshexec.
package executor

import (
	"context"
	"errors"
	"io"
	"path"
	"time"
)

// Command is one script to run on one host.
type Command struct {
	// Interpreter runs the script: "sh", "bash", or any program named in the
	// fence (python3, pwsh, …) that exists on the host.
	Interpreter string
	// Script is the block body, handed to the interpreter verbatim: never
	// interpolated, so parameter values cannot inject commands.
	Script string
	// Env holds what the command sees besides the executor's base
	// environment: parameters, variables, earlier steps' outputs and the
	// OPSBOOK_* built-ins. The executor sets OPSBOOK_OUTPUT itself.
	Env map[string]string
	// Dir is the working directory; "" means the executor's default
	// (the workspace on the local host, the login directory over SSH).
	Dir string
	// Timeout, when positive, kills the command's whole process group when
	// it expires. Cancelling ctx does the same.
	Timeout time.Duration
	// Stdout and Stderr receive output as it is produced. Either may be nil.
	// Each is written from its own goroutine; when both are the same writer
	// it gets both streams through one pipe, in the order they were written.
	Stdout, Stderr io.Writer
	// NoErrexit runs a shell script without errexit. By default an sh
	// script runs as `sh -e` and a bash script as `bash -e -o pipefail`
	// (see ShellOptions); other interpreters get no options.
	NoErrexit bool
	// Started, when set, is called with the process id of the command's
	// process group leader (its pgid) right after it is spawned, before Run
	// waits for it: the engine records it so that a run resumed after its
	// process died can stop what that process left running. Executors whose
	// processes are not local (SSH) do not call it.
	Started func(pid int)
}

// ShellOptions are the options put on the interpreter's command line,
// before the script, so that a failing line (or, in bash, a failing
// command of a pipeline) ends the script with its status, as in GitHub
// Actions' `bash -eo pipefail`. They are options, not lines prepended to the
// script, so the line numbers in the shell's messages are the script's own.
func ShellOptions(interpreter string, noErrexit bool) []string {
	if noErrexit {
		return nil
	}
	switch path.Base(interpreter) {
	case "sh":
		return []string{"-e"}
	case "bash":
		return []string{"-e", "-o", "pipefail"}
	}
	return nil
}

// Result is how a command ended.
type Result struct {
	ExitCode int  // the exit status; -1 when killed by a signal, a timeout or cancellation
	TimedOut bool // the Timeout expired and the process group was killed
	Canceled bool // ctx was cancelled and the process group was killed
	// Outputs are the name=value lines the command appended to the file
	// named by $OPSBOOK_OUTPUT, in order; a later line wins.
	Outputs  map[string]string
	Duration time.Duration
	// Warnings describe problems that did not stop the command and that
	// the run log should show: malformed $OPSBOOK_OUTPUT lines (skipped,
	// see ParseOutputs), an output destination that failed mid-run.
	Warnings []string
}

// Succeeded reports whether the command exited with status 0.
func (r Result) Succeeded() bool { return r.ExitCode == 0 && !r.TimedOut && !r.Canceled }

// SameWriter reports whether a and b are the same non-nil writer, as
// Command's Stdout and Stderr are when they should get both streams through
// one pipe. Writers of uncomparable types are never the same (== would
// panic on them).
func SameWriter(a, b io.Writer) (same bool) {
	if a == nil || b == nil {
		return false
	}
	defer func() {
		if recover() != nil {
			same = false
		}
	}()
	return a == b
}

// ErrInterpreterNotFound is wrapped by Run's error when the command's
// interpreter is not installed on the host.
var ErrInterpreterNotFound = errors.New("interpreter not found")

// Executor runs commands on one host. Run returns an error only when the
// command could not be run at all (interpreter missing, connection lost);
// a command that ran and failed is a Result with a non-zero ExitCode.
// An Executor may be used by several goroutines at once.
type Executor interface {
	Run(ctx context.Context, cmd Command) (Result, error)
	// Host names the host for the run log ("local" for the local host).
	Host() string
	Close() error
}
