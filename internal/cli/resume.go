package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/opsbook/opsbook/internal/engine"
	"github.com/opsbook/opsbook/internal/lifecycle"
	"github.com/opsbook/opsbook/internal/runbook"
)

func newResumeCmd(e *env) *cobra.Command {
	var output, answer, server string
	var yes, failedOnly, local bool
	cmd := &cobra.Command{
		Use:   "resume RUN",
		Short: "Continue a run whose process died (or that stopped while waiting)",
		Long: `Resume continues a run from its recorded events: completed steps are not
run again and their outputs are restored; the step that was running is run
again only if it is marked idempotent, otherwise you choose retry, skip,
abort or — when the runbook has a rollback document — rollback (in a
terminal, or with --answer; the same answer takes an open on_fail=ask
question). The runbook must be unchanged
(same snapshot); secret parameters are asked for again (OPSBOOK_PARAM_* or
the prompt), since they are never stored. Two processes can never execute
the same run: a run still held by a live process is refused.

With a server configured, resume asks the server to resume its run;
--local resumes a run of the local store instead — one started with
` + "`opsbook run --local`" + ` goes on reporting every event to the server it
reported to, sending first what the server still lacks. A finished
reported run is not run again: resume --local only sends the server the
events it has not received yet.`,
		Example: `  opsbook runs                      # find the interrupted run
  opsbook resume 01HV3 --yes
  opsbook resume 01HV3 --answer skip
  opsbook resume 01HV3 --failed-only   # re-run the hosts a fan-out step failed on
  opsbook resume 01HV3 --local         # a run started with opsbook run --local`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch answer {
			case "", runbook.ChoiceRetry, runbook.ChoiceSkip, runbook.ChoiceAbort, runbook.ChoiceRollback:
			default:
				return badInput("--answer must be retry, skip, abort or rollback, not %q", answer)
			}
			ctx := cmd.Context()
			if c, err := remoteClient(server); err != nil {
				return badInput("%v", err)
			} else if c != nil && !local {
				if failedOnly {
					return badInput("--failed-only reopens a failed run of the local store; the server does not offer it: drop --server (and unset OPSBOOK_SERVER) on the machine that ran it, or start a new run")
				}
				return resumeRemote(ctx, e, c, args[0], answer, output, yes)
			}
			ws, st, err := openWorkspaceState(ctx, e)
			if err != nil {
				return err
			}
			defer st.Close()
			run, err := st.GetRun(ctx, args[0])
			if err != nil {
				return badInput("%v", err)
			}
			report, err := reportClient(ctx, st, run.ID, server)
			if err != nil {
				return badInput("%v", err)
			}
			if run.Status.Finished() && !(failedOnly && run.Status == runbook.RunFailed) && report != nil {
				return flushReport(ctx, e, st, report, ws, run)
			}
			if run.Status.Finished() && !(failedOnly && run.Status == runbook.RunFailed) {
				return badInput("run %s is %s; there is nothing to resume (start a new run with `opsbook run`)", run.ID, run.Status)
			}
			p, err := loadPlan(e, ws, ws.Path(run.Runbook), run.Runbook, run.Environment)
			if err != nil {
				return err
			}
			if p.Params, err = collectParams(e, p.Document.Front.Params, nil, run.Params); err != nil {
				return err
			}
			if _, err := runbook.ResolveParams(p.Document.Front.Params, p.Params); err != nil {
				return badInput("invalid parameters:\n%v", err)
			}
			if run.Snapshot != p.Snapshot {
				// A task run stores the lifecycle's snapshot, which covers the
				// same documents; accept it when the runbook itself is unchanged.
				if tr, err := admitTaskRun(e, ws, run.Runbook, run.Environment, run.Emergency); err == nil && tr != nil && tr.Snapshot() == run.Snapshot {
					p.Snapshot = run.Snapshot
				}
			}
			actor := lifecycle.Actor(ws.Dir)
			if output == "text" {
				fmt.Fprintf(e.stderr, "resuming run %s\n", run.ID)
			}
			eng, closeSSH, err := newRunEngine(st, ws, p)
			if err != nil {
				return err
			}
			defer closeSSH()
			more := []func(*engine.ExecOptions){func(o *engine.ExecOptions) { o.FailedOnly = failedOnly }}
			ve := e
			if report != nil {
				ve = syncedStderr(e) // the reporter warns while the view writes
				rep, err := startReporter(ctx, ve, st, report, run, p)
				if err != nil {
					return err
				}
				defer rep.finish(reportWait())
				more = append(more, rep.observe)
			}
			_, err = drive(ctx, ve, eng, run, p, output, yes, actor, answer, true, more...)
			return err
		},
	}
	outputFlag(cmd, &output, "text", "json")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "approve gates and confirm manual steps as yourself with reason \"--yes\"")
	cmd.Flags().BoolVar(&failedOnly, "failed-only", false, "reopen a failed run and re-run only the hosts its failed fan-out step did not succeed on (failed or never started), then go on")
	cmd.Flags().StringVar(&answer, "answer", "", "what to do with an interrupted step that is not idempotent (or an open on_fail=ask question): retry, skip, abort or rollback")
	cmd.Flags().BoolVar(&local, "local", false, "with a server configured: resume the run of the local store here (a run of opsbook run --local goes on reporting to the server)")
	addServerFlag(cmd, &server)
	return cmd
}
