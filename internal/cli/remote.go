package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/opsbook/opsbook/internal/client"
	"github.com/opsbook/opsbook/internal/runbook"
)

// The --server mode of `opsbook run`, `opsbook runs` and `opsbook show`:
// the same commands, talking to a server instead of the local store. The
// commands add the flag with addServerFlag and, first thing in RunE:
//
//	if c, err := remoteClient(server); err != nil { return badInput("%v", err) } else if c != nil {
//		return runsRemote(cmd.Context(), e, c, filter, output) // or runRemote / showRemote
//	}

// addServerFlag adds --server to a command that can talk to a server.
func addServerFlag(cmd *cobra.Command, p *string) {
	cmd.Flags().StringVar(p, "server", "", "talk to this opsbook server instead of the local store (default $OPSBOOK_SERVER; key in $OPSBOOK_API_KEY)")
}

// remoteClient returns the server client when --server or OPSBOOK_SERVER
// is set, nil when the command should work locally.
func remoteClient(server string) (*client.Client, error) { return client.FromEnv(server) }

// runsRemote lists runs from the server.
func runsRemote(ctx context.Context, e *env, c *client.Client, f client.RunFilter, output string) error {
	runs, next, err := c.ListRuns(ctx, f)
	if err != nil {
		return err
	}
	if output == "json" {
		return writeRemoteJSON(e.stdout, map[string]any{"runs": runs, "next_cursor": next})
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tSTATUS\tENVIRONMENT\tRUNBOOK\tBY\tSTARTED")
	for _, r := range runs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Status, r.Environment, r.Runbook, r.CreatedBy, r.CreatedAt.Local().Format("2006-01-02 15:04:05"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if next != "" {
		fmt.Fprintf(e.stderr, "more runs: --cursor %s\n", next)
	}
	return nil
}

// runRemote starts a run on the server and streams its line-oriented live
// view until it ends; the exit status follows the run's final status.
// With yes, gates and manual steps are decided as the API key's user with
// the reason "--yes" (the server may refuse, e.g. self-approval in a
// protected environment; the run then waits for someone else).
func runRemote(ctx context.Context, e *env, c *client.Client, req client.StartRequest, output string, yes bool) error {
	run, err := c.StartRun(ctx, req)
	if client.IsStatus(err, 400) {
		return badInput("%v", err)
	}
	if err != nil {
		return err
	}
	if output != "json" {
		fmt.Fprintf(e.stdout, "run %s: %s in %s (snapshot %s)\n", run.ID, run.Runbook, run.Environment, run.Snapshot)
	}
	enc := json.NewEncoder(e.stdout)
	status, err := c.Stream(ctx, run.ID, 0, func(ev runbook.Event) error {
		if output == "json" {
			return enc.Encode(ev)
		}
		writeEventLine(e.stdout, ev)
		switch ev.Type {
		case runbook.EventGateWaiting:
			if yes {
				if _, err := c.Gate(ctx, run.ID, runbook.DecisionGo, "--yes"); err != nil {
					fmt.Fprintf(e.stderr, "opsbook: --yes could not approve: %v; waiting for another approver\n", err)
				}
			} else {
				fmt.Fprintf(e.stderr, "opsbook: waiting at gate %s: approve it on the server (POST /api/v1/runs/%s/gate) or rerun with --yes\n", ev.Step, run.ID)
			}
		case runbook.EventManualWaiting:
			if yes {
				if _, err := c.Answer(ctx, run.ID, runbook.WaitKindManual, runbook.ChoiceConfirmed, "--yes"); err != nil {
					fmt.Fprintf(e.stderr, "opsbook: --yes could not confirm: %v\n", err)
				}
			}
		case runbook.EventAskWaiting:
			fmt.Fprintf(e.stderr, "opsbook: step %s asks %s: answer with POST /api/v1/runs/%s/answer\n", ev.Step, ev.Data["options"], run.ID)
		}
		return nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return &ExitError{Code: ExitInterrupted, Err: fmt.Errorf("stopped watching run %s; it goes on on the server (cancel it with POST /api/v1/runs/%s/cancel)", run.ID, run.ID)}
		}
		return err
	}
	if output != "json" {
		fmt.Fprintf(e.stdout, "run %s %s\n", run.ID, status)
	}
	if code := status.ExitCode(); code != 0 {
		return &ExitError{Code: code}
	}
	return nil
}

// showRemote prints a run's full log from the server, step by step.
func showRemote(ctx context.Context, e *env, c *client.Client, id, output string) error {
	d, err := c.GetRun(ctx, id)
	if err != nil {
		return err
	}
	if output == "json" {
		var evs []runbook.Event
		if err := c.AllEvents(ctx, d.ID, func(ev runbook.Event) error { evs = append(evs, ev); return nil }); err != nil {
			return err
		}
		return writeRemoteJSON(e.stdout, map[string]any{"run": d.Run, "state": d.State, "events": evs})
	}
	fmt.Fprintf(e.stdout, "run %s  %s\n  runbook     %s\n  environment %s\n  started by  %s at %s\n  snapshot    %s\n\n",
		d.ID, d.Status, d.Runbook, d.Environment, d.CreatedBy, d.CreatedAt.Local().Format(time.DateTime), d.Snapshot)
	return c.AllEvents(ctx, d.ID, func(ev runbook.Event) error {
		writeEventLine(e.stdout, ev)
		return nil
	})
}

// writeEventLine is the line-oriented view of one event: time, what
// happened, and output lines indented under their step.
func writeEventLine(w io.Writer, ev runbook.Event) {
	at := ev.Time.Local().Format("15:04:05")
	who := ""
	if ev.Actor != "" {
		who = " by " + ev.Actor
	}
	switch ev.Type {
	case runbook.EventStepOutput:
		for _, line := range strings.SplitAfter(ev.Text, "\n") {
			if line == "" {
				continue
			}
			fmt.Fprintf(w, "%s   %s │ %s", at, ev.Step, line)
			if !strings.HasSuffix(line, "\n") {
				fmt.Fprintln(w)
			}
		}
	case runbook.EventStepStarted:
		fmt.Fprintf(w, "%s ▶ %s%s\n", at, ev.Step, hostSuffix(ev.Host))
	case runbook.EventStepFinished:
		fmt.Fprintf(w, "%s %s %s %s%s %s\n", at, mark(ev.Data["status"]), ev.Step, ev.Data["status"], hostSuffix(ev.Host), ev.Text)
	case runbook.EventGateWaiting, runbook.EventManualWaiting, runbook.EventAskWaiting:
		fmt.Fprintf(w, "%s ⏸ %s: %s %s\n", at, ev.Step, ev.Type, strings.TrimSpace(ev.Text))
	case runbook.EventGateDecided:
		fmt.Fprintf(w, "%s ✓ %s: %s%s: %s\n", at, ev.Step, ev.Data["decision"], who, ev.Text)
	default:
		fmt.Fprintf(w, "%s · %s %s%s %s\n", at, ev.Type, ev.Step, who, strings.TrimSpace(ev.Text))
	}
}

func hostSuffix(h string) string {
	if h == "" || h == "local" {
		return ""
	}
	return " @" + h
}

func mark(status string) string {
	switch runbook.StepStatus(status) {
	case runbook.StepSucceeded:
		return "✓"
	case runbook.StepSkipped:
		return "↷"
	}
	return "✗"
}

func writeRemoteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
