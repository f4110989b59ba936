package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/snapshot"
)

func newShowCmd(e *env) *cobra.Command {
	var output, server string
	cmd := &cobra.Command{
		Use:   "show RUN",
		Short: "Show a run's full log, step by step, from its recorded events",
		Example: `  opsbook show r-01HX…                 # a run id, or a unique prefix of one
  opsbook show r-01HX… -o json | jq .status`,
		Long: `Show prints everything recorded about a run: each event in order (steps,
their output, checks, retries, decisions and who took them, notes, guard
breaches, rollback) and then a summary per step. RUN may be an id prefix.
With --output json it prints the events, one per line, then the derived state.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if c, err := remoteClient(server); err != nil {
				return badInput("%v", err)
			} else if c != nil {
				return showRemote(ctx, e, c, args[0], output)
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
			doc, rollback, docNote := runDocuments(e, ws, run)
			titles := stepTitles(doc, rollback)
			return writeRunLog(e, output, run, titles, docNote, func(fn func(runbook.Event) error) error {
				for ev, err := range st.AllEvents(ctx, run.ID, 0) {
					if err != nil {
						return err
					}
					if err := fn(ev); err != nil {
						return err
					}
				}
				return nil
			}, func() bool {
				alive, err := st.RunOwnerAlive(ctx, run.ID)
				return err == nil && !alive
			})
		},
	}
	outputFlag(cmd, &output, "text", "json")
	addServerFlag(cmd, &server)
	return cmd
}

// writeRunLog prints a recorded run, local or from a server: every event in
// order with its time, output lines under their step, then the state per
// step (or, with --output json, the events and the derived state). each
// calls its function with every event in order; ownerDead reports whether
// a run that claims to be running has lost its process.
func writeRunLog(e *env, output string, run runbook.Run, titles map[string]string, docNote string, each func(func(runbook.Event) error) error, ownerDead func() bool) error {
	state := runbook.NewRunState(run.ID)
	view := newView(e.stdout, output, titles)
	if output == "text" {
		fmt.Fprintf(e.stdout, "Run %s — %s\nRunbook %s in %s, snapshot %s, started by %s at %s\n\n", run.ID, run.Title,
			run.Runbook, run.Environment, snapshot.ShortOf(run.Snapshot), run.CreatedBy, run.CreatedAt.Local().Format(time.RFC3339))
		if docNote != "" {
			fmt.Fprintf(e.stdout, "Note: %s\n\n", docNote)
		}
	}
	err := each(func(ev runbook.Event) error {
		state.Apply(ev)
		if output == "text" && ev.Type != runbook.EventStepOutput && !bookkeeping(ev) {
			view.flush()
			fmt.Fprintf(e.stdout, "%s ", ev.Time.Local().Format("15:04:05.000"))
		}
		view.event(ev)
		return nil
	})
	if err != nil {
		return err
	}
	view.flush()
	if !state.Status.Finished() && state.Status != runbook.RunPending {
		if ownerDead() {
			state.Status = runbook.RunInterrupted
		}
	}
	if output == "json" {
		return json.NewEncoder(e.stdout).Encode(state)
	}
	fmt.Fprintf(e.stdout, "\nStatus: %s\n", state.Status)
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tSTATUS\tATTEMPTS\tDURATION\tCHECKS\tDETAIL")
	now := time.Now()
	for _, s := range state.AllSteps() {
		var checks []string
		for _, c := range s.Checks {
			r := "pass"
			if !c.Passed {
				r = "fail"
			}
			checks = append(checks, c.Kind+":"+r)
		}
		id := s.ID
		if s.Phase == runbook.PhaseRollback {
			id = "rollback/" + id
		}
		if t := titles[id]; t != "" {
			id += " — " + t
		}
		detail := s.Error
		if s.Status == runbook.StepSkipped {
			detail = s.SkipReason
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", id, s.Status, s.Attempts, elapsed(s.Duration(now)), strings.Join(checks, " "), detail)
		printHostRows(tw, s, now)
	}
	tw.Flush()
	for _, b := range state.Breaches {
		fmt.Fprintf(e.stdout, "Guard %s breached (%s, threshold %s) during step %s: %s\n", b.Guard, b.Value, b.Threshold, orText(b.Step, "-"), b.Action)
	}
	if state.Status == runbook.RunInterrupted {
		fmt.Fprintf(e.stdout, "\nThe run's process died; continue it with `opsbook resume %s`.\n", run.ID)
	}
	return nil
}
