// Package cli is opsbook's composition root: one file per subcommand, wiring
// the domain packages to flags, terminals and exit codes. Nothing imports it.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// Exit statuses shared by every command.
const (
	ExitOK          = 0
	ExitFailed      = 1 // the operation ran and failed (lint errors, a failed run)
	ExitBadInput    = 2 // the command line or a document was wrong; nothing ran
	ExitRolledBack  = 3
	ExitInterrupted = 4 // cancelled or interrupted
	ExitRefused     = 5 // a lifecycle gate (review, rehearsal, checklist, window, freeze) refused; nothing ran
)

// ExitError carries a specific exit status out of a command. Its message, if
// any, is printed as "opsbook: message".
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// badInput wraps err so the command exits with ExitBadInput.
func badInput(format string, args ...any) error {
	return &ExitError{Code: ExitBadInput, Err: fmt.Errorf(format, args...)}
}

// env is what every command receives: the streams and global flags.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	workspace      string // --workspace / -C
}

// Main runs the CLI with args and returns the process exit status.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	root := newRootCmd(e)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		if ee.Err != nil {
			fmt.Fprintf(stderr, "opsbook: %v\n", ee.Err)
		}
		return ee.Code
	}
	fmt.Fprintf(stderr, "opsbook: %v\n", err)
	// Errors that cobra itself raises (unknown flag, wrong arguments) are bad input.
	return ExitBadInput
}

func newRootCmd(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:   "opsbook",
		Short: "Runbooks you can run: Markdown documents that execute, with checkpoints, gates and a durable record",
		Long: `opsbook turns operations runbooks written in Markdown into programs that run:
every step's command, verification checkpoint, Go/No-Go gate and rollback plan
is in the document a reviewer reads, and every run is recorded event by event.

Start with:
  opsbook init                    create opsbook.yaml and the ops/ tree here
  opsbook new "postgres 12 to 15 upgrade"
                                  generate runbook, rollback, checklist, postmortem
  opsbook lint                    check every document under ops/
  opsbook run FILE --env staging  execute a runbook`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       Version,
	}
	root.SetVersionTemplate(versionLine() + "\n")
	root.PersistentFlags().StringVarP(&e.workspace, "workspace", "C", "", "workspace directory (default: the nearest parent with opsbook.yaml, else the current directory)")
	root.AddCommand(
		newVersionCmd(e),
		newLintCmd(e),
		newServeCmd(e),
		newAdminCmd(e),
		newHealthcheckCmd(e),
		newAuditCmd(e),
		newLoginCmd(e),
		newInitCmd(e),
		newNewCmd(e),
		newListCmd(e),
		newArchiveCmd(e),
		newReviewCmd(e),
		newCheckCmd(e),
		newStatusCmd(e),
		newChecklistCmd(e),
		newPostmortemCmd(e),
		newRunCmd(e),
		newRehearseCmd(e),
		newRunsCmd(e),
		newShowCmd(e),
		newResumeCmd(e),
		newNoteCmd(e),
		newDecideCmd(e),
	)
	registerCompletions(e, root)
	return root
}
