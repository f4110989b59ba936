package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/opsbook/opsbook/internal/client"
	"github.com/opsbook/opsbook/internal/engine"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/snapshot"
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
	if output != "text" {
		return writeData(e.stdout, output, map[string]any{"runs": runs, "next_cursor": next})
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

// runRemote starts a run on the server and follows it with the same view
// as a local run (line-oriented, JSON, or the live view in a terminal)
// until it ends; the exit status follows the run's final status. doc and
// rollback, when the runbook is in the local workspace, give the view its
// step titles and estimates.
func runRemote(ctx context.Context, e *env, c *client.Client, req client.StartRequest, output string, yes bool, doc, rollback *runbook.Document) error {
	run, err := c.StartRun(ctx, req)
	if client.IsStatus(err, 400) {
		return badInput("%v", err)
	}
	if err != nil {
		return err
	}
	return watchRemote(ctx, e, c, run, output, yes, doc, rollback)
}

// watchRemote streams a server run's events into the view and answers
// what the run waits for from here: --yes for gates and manual steps, the
// terminal prompt, or a message saying where else it can be decided.
func watchRemote(ctx context.Context, e *env, c *client.Client, run runbook.Run, output string, yes bool, doc, rollback *runbook.Document) error {
	if output == "text" {
		fmt.Fprintf(e.stderr, "run %s: %s in %s on the server (snapshot %s)\n", run.ID, run.Runbook, run.Environment, snapshot.ShortOf(run.Snapshot))
	}
	view := newView(e.stdout, output, stepTitles(doc, rollback))
	observe := view.event
	var live *liveTerm
	if out, ok := liveTerminal(e, output); ok {
		live = newLiveTerm(out, newLiveModel(run.ID, doc, rollback))
		observe = live.event
		live.cancelNote = "stopped watching: the run goes on on the server"
		live.start(ctx)
	}
	_, tty := terminalInput(e)
	a := &remoteAsker{e: e, c: c, runID: run.ID, live: live,
		decider: &cliDecider{e: e, yes: yes, tty: tty, actor: "you", view: view, live: live}}
	state := runbook.NewRunState(run.ID)
	status, err := c.Stream(ctx, run.ID, 0, func(ev runbook.Event) error {
		observe(ev)
		state.Apply(ev)
		a.update(ctx, state.Waiting)
		return nil
	})
	a.update(ctx, nil)
	view.flush()
	if live != nil {
		live.finish()
	}
	if err != nil {
		if ctx.Err() != nil {
			return &ExitError{Code: ExitInterrupted, Err: fmt.Errorf("stopped watching run %s; it goes on on the server (cancel it with POST /api/v1/runs/%s/cancel)", run.ID, run.ID)}
		}
		return err
	}
	if output == "text" && live == nil {
		fmt.Fprintf(e.stderr, "run %s %s\n", run.ID, status)
	}
	if code := status.ExitCode(); code != 0 {
		return &ExitError{Code: code}
	}
	return nil
}

// remoteAsker asks, in the background, the question a server run waits
// for, and sends the answer to the server; a question answered elsewhere
// (or the run moving on) cancels the asking.
type remoteAsker struct {
	e       *env
	c       *client.Client
	runID   string
	live    *liveTerm
	decider *cliDecider
	seq     int64 // of the waiting event being asked about
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

func (a *remoteAsker) update(ctx context.Context, w *runbook.Waiting) {
	if w != nil && w.Seq == a.seq {
		return
	}
	if a.cancel != nil {
		a.cancel()
		a.wg.Wait()
		a.cancel, a.seq = nil, 0
	}
	if w == nil {
		return
	}
	a.seq = w.Seq
	actx, cancel := context.WithCancel(ctx)
	a.cancel = cancel
	a.wg.Add(1)
	go func(w runbook.Waiting) {
		defer a.wg.Done()
		var lastErr error
		for {
			req, err := a.decider.Decide(actx, w, lastErr)
			if err != nil {
				var nd *engine.NoDecisionError
				if errors.As(err, &nd) {
					a.tell(fmt.Sprintf("run %s waits on the server for the %s decision on %s; take it in the web UI or with POST /api/v1/runs/%s/%s (or rerun with --yes)",
						a.runID, w.Kind, orText(w.Step, "guard "+w.Guard), a.runID, map[bool]string{true: "gate", false: "answer"}[w.Kind == runbook.WaitKindGate]))
				}
				return
			}
			switch w.Kind {
			case runbook.WaitKindGate:
				_, err = a.c.Gate(actx, a.runID, req.Choice, req.Reason)
			case runbook.WaitKindManual:
				_, err = a.c.Answer(actx, a.runID, runbook.WaitKindManual, runbook.ChoiceConfirmed, req.Reason)
			default:
				_, err = a.c.Answer(actx, a.runID, runbook.WaitKindAsk, req.Choice, req.Reason)
			}
			if err == nil || actx.Err() != nil {
				return
			}
			lastErr = err
		}
	}(*w)
}

func (a *remoteAsker) tell(msg string) {
	if a.live != nil {
		a.live.setNotice(msg)
		return
	}
	fmt.Fprintf(a.e.stderr, "opsbook: %s\n", msg)
}

// showRemote prints a run's full log from the server, exactly as show
// prints a local one; step titles come from the runbook in the local
// workspace when it is there.
func showRemote(ctx context.Context, e *env, c *client.Client, id, output string) error {
	d, err := c.GetRun(ctx, id)
	if err != nil {
		return err
	}
	// The server names the steps of the documents the run froze; a local
	// copy of the runbook only fills in what it does not.
	titles := stepTitles(localDocument(e, d.Runbook), nil)
	for label, title := range d.StepTitles {
		titles[label] = title
	}
	return writeRunLog(e, output, d.Run, titles, "",
		func(fn func(runbook.Event) error) error { return c.AllEvents(ctx, d.ID, fn) },
		func() bool { return d.Status == runbook.RunInterrupted })
}

// localDocument parses a runbook of the local workspace for the titles of
// a server run's steps; nil when there is no such file.
func localDocument(e *env, rel string) *runbook.Document {
	ws, err := findWorkspace(e)
	if err != nil {
		return nil
	}
	doc, err := parseDoc(&env{stdout: io.Discard, stderr: io.Discard}, ws.Path(rel))
	if err != nil {
		return nil
	}
	return doc
}
