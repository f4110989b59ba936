package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/opsbook/opsbook/internal/lifecycle"
	"github.com/opsbook/opsbook/internal/runbook"
)

func newDecideCmd(e *env) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "decide RUN GATE go|no-go --reason TEXT",
		Short: "Decide a Go/No-Go gate of a local run that waits for you (a second approver, from another terminal)",
		Long: `Decide records your Go or No-Go on a gate a local run waits at, as you
(git's user.email in the workspace, else the OS user), while the run
executes in another process: that process reads the decision from the run
store and goes on when the gate has enough distinct approvers.

A gate with approvers=2 needs two people: ` + "`opsbook run … --yes`" + ` gives the
approval of the one who runs it, then waits and names this command for the
others. The same person cannot approve twice. Gates in a protected
environment are decided through the server only.`,
		Example: `  opsbook decide r-01HV3 go-failover go --reason "incident commander: main site confirmed down"`,
		Args:    cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			runID, gate, choice := args[0], args[1], args[2]
			if choice != runbook.DecisionGo && choice != runbook.DecisionNoGo {
				return badInput("the decision must be go or no-go, not %q", choice)
			}
			if strings.TrimSpace(reason) == "" {
				return badInput("--reason is required: say why (it is recorded with your decision)")
			}
			ctx := cmd.Context()
			ws, st, err := openWorkspaceState(ctx, e)
			if err != nil {
				return err
			}
			defer st.Close()
			run, err := st.GetRun(ctx, runID)
			if err != nil {
				return badInput("%v", err)
			}
			if environment, err := ws.Environment(run.Environment); err == nil && environment.Protected {
				return badInput("run %s is in the protected environment %s: %s", run.ID, run.Environment, protectedGateHint)
			}
			eng := newEngine(st)
			state, err := eng.State(ctx, run.ID)
			if err != nil {
				return err
			}
			w := state.Waiting
			if w == nil || w.Kind != runbook.WaitKindGate || w.Step != gate {
				return badInput("run %s does not wait at gate %s (%s)", run.ID, gate, waitingText(w))
			}
			actor := lifecycle.Actor(ws.Dir)
			if _, err := eng.Decide(ctx, run.ID, runbook.DecisionRequest{Kind: runbook.WaitKindGate, Step: gate, Phase: w.Phase,
				Actor: actor, Choice: choice, Reason: reason}); err != nil {
				return badInput("%v", err)
			}
			fmt.Fprintf(e.stdout, "%s on gate %s of run %s recorded as %s\n", choice, gate, run.ID, actor)
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (required; recorded with the decision)")
	return cmd
}

func waitingText(w *runbook.Waiting) string {
	if w == nil {
		return "it waits for nothing"
	}
	if w.Step == "" {
		return "it waits for an answer about a guard"
	}
	return fmt.Sprintf("it waits at %s %s", w.Kind, w.Step)
}
