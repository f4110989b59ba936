package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/opsbook/opsbook/internal/client"
	"github.com/opsbook/opsbook/internal/engine"
	"github.com/opsbook/opsbook/internal/executor"
	"github.com/opsbook/opsbook/internal/lifecycle"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/snapshot"
	"github.com/opsbook/opsbook/internal/store"
	"github.com/opsbook/opsbook/internal/workspace"
)

func newRunCmd(e *env) *cobra.Command {
	var (
		envName, from, output, emergency string
		reason, server                   string
		params                           []string
		dryRun, yes, local               bool
	)
	cmd := &cobra.Command{
		Use:   "run FILE|TASK --env NAME",
		Short: "Execute a runbook, step by step, with a durable record of every event",
		Long: `Run executes a runbook in an environment: each step's command in its own
process group with its timeout, retries, verification checkpoints and failure
policy; gates and manual steps wait for people; the rollback document runs
when the policy or the operator says so. Every event is recorded in the
workspace's run store (.opsbook/opsbook.db) before the step proceeds, so a
run whose process dies can be continued with ` + "`opsbook resume`" + `.

TASK is a planned operation under ops/active/: its <task>-runbook.md runs.

Parameters come from --param NAME=VALUE, from OPSBOOK_PARAM_<NAME>
environment variables, or from a prompt in a terminal. Secret parameters are
never accepted on the command line.

Without a terminal, a gate needs --yes (recorded as a Go by you with the
reason "--yes") or the run fails at the gate.

With a server configured (--server or OPSBOOK_SERVER), the run executes
on the server by default; --local executes it here, in this process, and
reports every event to the server, so its overview, runs list, run page,
audit log and postmortem show the run as if the server had run it. The
events queue in the local store while the server is unreachable (one
warning, the run goes on) and are sent, in order and exactly once, when it
is back. A server that refuses the record (no RunbookRun there, a key it
does not accept) stops the run before anything executes; one that cannot
be reached does not. ` + "`opsbook resume --local RUN`" + ` continues a reported
run, or sends what the server still lacks of a finished one. Gates of a
protected environment are never decided locally, so such runs are refused
with --local as without a server.

Exit status: 0 succeeded, 1 failed, 2 bad input, 3 rolled back,
4 cancelled or interrupted, 5 refused by a lifecycle gate.`,
		Example: `  opsbook run ops/runbooks/backup.md --env staging --param DB=orders
  opsbook run 2026-03-01-pg-upgrade-15 --env production
  opsbook run backup.md --env staging --dry-run
  OPSBOOK_SERVER=https://ops.example.com opsbook run backup.md --env staging --local
  OPSBOOK_PARAM_TOKEN=… opsbook run rotate.md --env dev --yes --output json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if envName == "" {
				return badInput("--env is required: name the environment to run in (see environments: in opsbook.yaml)")
			}
			var err error
			if emergency, err = emergencyReason(emergency, reason); err != nil {
				return err
			}
			ctx := cmd.Context()
			c, err := remoteClient(server)
			if err != nil {
				return badInput("%v", err)
			}
			if local && c == nil {
				return badInput("--local reports a run executing here to a server: name it with --server URL or OPSBOOK_SERVER (without a server, opsbook run executes locally anyway)")
			}
			if c != nil && !local {
				if dryRun {
					return badInput("--dry-run plans from the local workspace: drop --server (and unset OPSBOOK_SERVER) to see the plan")
				}
				return startRemote(ctx, e, c, args[0], envName, from, emergency, params, output, yes)
			}
			ws, err := findWorkspace(e)
			if err != nil {
				return badInput("%v", err)
			}
			abs, rel, err := runbookPath(ws, args[0])
			if err != nil {
				return err
			}
			p, err := loadPlan(e, ws, abs, rel, envName)
			if err != nil {
				return err
			}
			if from != "" && !hasStep(p.Document, from) {
				return badInput("--from %s: the runbook has no step with that id", from)
			}
			if dryRun {
				if p.Params, err = planParams(e, p.Document.Front.Params, params); err != nil {
					return err
				}
				return printPlan(e.stdout, p, from)
			}
			_, err = runLocal(ctx, e, ws, p, rel, params, localRun{from: from, emergency: emergency, output: output, yes: yes, report: c})
			return err
		},
	}
	f := cmd.Flags()
	f.StringVarP(&envName, "env", "e", "", "environment to run in (required)")
	f.StringArrayVarP(&params, "param", "p", nil, "parameter NAME=VALUE (repeatable; not for secrets: use OPSBOOK_PARAM_NAME)")
	f.BoolVar(&dryRun, "dry-run", false, "print the plan (steps, targets, commands, checks, guards, estimates, rollback) and execute nothing")
	f.BoolVarP(&yes, "yes", "y", false, "approve gates and confirm manual steps as yourself with reason \"--yes\"")
	f.StringVar(&from, "from", "", "start at this step id; earlier steps are recorded as skipped")
	outputFlag(cmd, &output, "text", "json") // text: live, line-oriented; json: one event per line
	f.StringVar(&emergency, "emergency", "", "run as an emergency override of the lifecycle gates (change: emergency tasks only); give the reason with --reason")
	f.Lookup("emergency").NoOptDefVal = emergencyFromReason
	f.StringVar(&reason, "reason", "", "why this emergency run overrides the lifecycle gates (with --emergency; recorded on the run)")
	f.BoolVar(&local, "local", false, "with a server configured: execute here and report every event to the server (default: the server executes the run)")
	addServerFlag(cmd, &server)
	return cmd
}

// emergencyFromReason is --emergency given without =value: the reason is
// in --reason, as docs/lifecycle.md and `opsbook status` tell people to
// type it (--emergency --reason "…").
const emergencyFromReason = "\x00from --reason"

// emergencyReason is the reason of an emergency run from --emergency and
// --reason: --emergency --reason "…", or the older --emergency="…".
func emergencyReason(emergency, reason string) (string, error) {
	reason = strings.TrimSpace(reason)
	switch {
	case emergency == "" && reason != "":
		return "", badInput("--reason explains an emergency override: add --emergency (opsbook run … --emergency --reason \"…\")")
	case emergency == "":
		return "", nil
	case emergency != emergencyFromReason && reason != "":
		return "", badInput("give the emergency's reason once: --emergency --reason \"…\"")
	case emergency != emergencyFromReason:
		return strings.TrimSpace(emergency), nil
	case reason == "":
		return "", badInput("--emergency needs a reason: --emergency --reason \"what is burning and why the gates must wait\"")
	}
	return reason, nil
}

// localRun are the choices of one in-process run.
type localRun struct {
	from, emergency, output string
	yes                     bool
	report                  *client.Client // the server the run reports to (run --local); nil: none
}

// runLocal collects the parameters of a loaded plan, admits the run
// (lifecycle gates, change calendar), executes it in-process with the
// terminal view and records it in the task's lifecycle: `opsbook run`
// without --server, and the run that `opsbook rehearse` rehearses. It
// returns the run with its final status (no ID: it never started).
func runLocal(ctx context.Context, e *env, ws *workspace.Workspace, p *engine.Plan, rel string, params []string, o localRun) (runbook.Run, error) {
	// Who runs it comes from `git config`, a process of its own: it runs
	// while the parameters are collected and the run is admitted.
	actorC := make(chan string, 1)
	go func() { actorC <- lifecycle.Actor(ws.Dir) }()
	var err error
	if p.Params, err = collectParams(e, p.Document.Front.Params, params, nil); err != nil {
		return runbook.Run{}, err
	}
	if _, err := runbook.ResolveParams(p.Document.Front.Params, p.Params); err != nil {
		return runbook.Run{}, badInput("invalid parameters:\n%v", err)
	}
	tr, err := admitTaskRun(e, ws, rel, p.Environment, o.emergency)
	if err != nil {
		return runbook.Run{}, err
	}
	if tr == nil {
		if err := admitStandingRun(e, ws, rel, p.Document, p.Environment, o.emergency); err != nil {
			return runbook.Run{}, err
		}
	}
	if err := refuseLocalProtectedGates(p); err != nil {
		return runbook.Run{}, err
	}
	// Received before the store is opened: from the moment its file is
	// there until the run is recorded stays as short as it was.
	actor := <-actorC
	if tr != nil && tr.Snapshot() != "" {
		p.Snapshot = tr.Snapshot()
	}
	st, err := openState(ctx, ws)
	if err != nil {
		return runbook.Run{}, err
	}
	defer st.Close()
	eng, closeSSH, err := newRunEngine(st, ws, p)
	if err != nil {
		return runbook.Run{}, err
	}
	defer closeSSH()
	var id string
	registered := false
	if o.report != nil {
		id = store.NewRunID()
		if registered, err = preRegister(ctx, o.report, id, rel, p, o.emergency); err != nil {
			return runbook.Run{}, err
		}
	}
	run, err := eng.Start(ctx, p, engine.StartOptions{Actor: actor, From: o.from, Emergency: o.emergency, ID: id})
	if err != nil {
		var pe *engine.ParamsError
		var de *engine.DocumentError
		if errors.As(err, &pe) || errors.As(err, &de) {
			return runbook.Run{}, badInput("%v", err)
		}
		var ge *engine.GuardError
		if errors.As(err, &ge) {
			return runbook.Run{}, &ExitError{Code: ExitRefused, Err: err}
		}
		return runbook.Run{}, err
	}
	if tr != nil {
		if err := tr.Started(run); err != nil {
			return runbook.Run{}, err
		}
	}
	var more []func(*engine.ExecOptions)
	if o.report != nil {
		e = syncedStderr(e) // the reporter warns while the view writes
		defer unsentHint(context.WithoutCancel(ctx), e, st, run.ID)
		rep, err := startReporter(ctx, e, st, o.report, run, p)
		if err != nil {
			return runbook.Run{}, err
		}
		if registered {
			if err := st.MarkRunReportRegistered(ctx, run.ID); err != nil {
				return runbook.Run{}, err
			}
		}
		defer rep.finish(reportWait())
		more = append(more, rep.observe)
	}
	status, err := drive(ctx, e, eng, run, p, o.output, o.yes, actor, "", false, more...)
	run.Status = status
	if tr != nil {
		if ferr := tr.Finished(run); ferr != nil && err == nil {
			err = ferr
		}
	}
	return run, err
}

func hasStep(d *runbook.Document, id string) bool {
	for _, s := range d.Steps {
		if s.ID == id {
			return true
		}
	}
	return false
}

// drive executes (or resumes) a run in-process with the terminal view and
// maps its final status to the exit status.
func drive(ctx context.Context, e *env, eng *engine.Engine, run runbook.Run, p *engine.Plan, output string, yes bool, actor, answer string, resume bool, more ...func(*engine.ExecOptions)) (runbook.RunStatus, error) {
	view := newRunView(e.stdout, output, p)
	_, tty := terminalInput(e)
	decider := &cliDecider{e: e, yes: yes, tty: tty, actor: actor, view: view, protected: p.Protected, runID: run.ID}
	if output == "text" {
		fmt.Fprintf(e.stderr, "run %s: %s in %s (snapshot %s)\n", run.ID, p.Runbook, p.Environment, snapshot.ShortOf(p.Snapshot))
	}
	observe := view.event
	var live *liveTerm
	if out, ok := liveTerminal(e, output); ok {
		live = newLiveTerm(out, newLiveModel(run.ID, p.Document, p.Rollback))
		if resume {
			// Show what the run did before it was interrupted.
			prior, err := eng.State(ctx, run.ID)
			if err != nil {
				return "", err
			}
			live.m.state = prior
			live.m.title, live.m.environment = orText(live.m.title, prior.Title), prior.Environment
		}
		decider.live, observe = live, live.event
		live.start(ctx)
	}
	o := engine.ExecOptions{Actor: actor, Decider: decider, Observe: observe, RetryInterrupted: answer}
	for _, f := range more {
		f(&o)
	}
	var status runbook.RunStatus
	var err error
	if resume {
		status, err = eng.Resume(ctx, run.ID, p, o)
	} else {
		status, err = eng.Execute(ctx, run.ID, p, o)
	}
	view.flush()
	if live != nil {
		live.finish()
	}
	if err != nil {
		var pe *engine.ParamsError
		if errors.As(err, &pe) {
			return status, badInput("%v", err)
		}
		if errors.Is(err, store.ErrLocked) {
			return status, &ExitError{Code: ExitInterrupted, Err: err}
		}
		return status, err
	}
	if output == "text" && live == nil {
		fmt.Fprintf(e.stderr, "run %s %s\n", run.ID, status)
		if status == runbook.RunCancelled {
			fmt.Fprintf(e.stderr, "the record is kept: `opsbook show %s`\n", run.ID)
		}
	}
	if code := status.ExitCode(); code != 0 {
		return status, &ExitError{Code: code}
	}
	return status, nil
}

// maxViewLine bounds an output line held by the view.
const maxViewLine = 16 << 10

// runView prints a run's events as they are recorded: line-oriented, each
// output line prefixed by its step id, so it reads the same in a terminal
// and in CI logs; or one JSON event per line.
type runView struct {
	mu      sync.Mutex
	w       io.Writer
	json    *json.Encoder // the JSON view: one event per line, from a reused buffer
	titles  map[string]string
	partial map[string]*bytes.Buffer // per step and stream: an unfinished line
	out     []byte                   // the lines of one output event, written at once
	color   bool                     // keep the colours of command output (sanitizeOutput)

	// Output events are formatted and written by a goroutine of their own
	// (printer), started by the first: the recorder handing them over
	// goes on recording the next chunk meanwhile, where formatting and a
	// write to a slow pipe used to be a third of its time. Every other
	// event, and flush, waits until the output before it is written.
	qmu sync.Mutex
	q   chan printItem // nil while no printer runs; sent to with qmu held
}

// printItem is an output event for the printer, or (done not nil) a mark
// it closes once everything queued before it is written.
type printItem struct {
	ev   runbook.Event
	done chan struct{}
}

// printQueue is how many output events (64 KiB each at most) wait for the
// printer before the recorder handing them over waits too.
const printQueue = 16

// appendLine appends an output line under its label ("[label] line\n"),
// neutralised by sanitizeOutput unless it is plain printable ASCII (the
// common case, copied as it is).
func appendLine[T string | []byte](out []byte, label string, line T, color bool) []byte {
	out = append(out, '[')
	out = append(out, label...)
	out = append(out, "] "...)
	if plainText(line) {
		out = append(out, line...)
	} else {
		out = append(out, sanitizeOutput(string(line), color)...)
	}
	return append(out, '\n')
}

func newRunView(w io.Writer, output string, p *engine.Plan) *runView {
	titles := map[string]string{}
	for _, s := range p.Document.Steps {
		titles[s.ID] = s.Title
	}
	if p.Rollback != nil {
		for _, s := range p.Rollback.Steps {
			titles["rollback/"+s.ID] = s.Title
		}
	}
	return newView(w, output, titles)
}

// newView is the line-oriented view ("text") or the JSON one ("json") of a
// run whose steps have these titles.
func newView(w io.Writer, output string, titles map[string]string) *runView {
	v := &runView{w: w, titles: titles, partial: map[string]*bytes.Buffer{}, color: outputColor(w)}
	if output == "json" {
		// An Encoder writes what json.Marshal returns and a newline, in one
		// write, from a pooled buffer: Marshal and append allocated and
		// copied twice the size of each 64 KiB output chunk.
		v.json = json.NewEncoder(w)
	}
	return v
}

// keepOut keeps the buffer an output event was written from for the next
// one, unless it grew past 1 MiB (a chunk of very short lines under a long
// label, or of control bytes escaped in JSON), which need not be kept.
func (v *runView) keepOut(out []byte) {
	v.out = out[:0]
	if cap(v.out) > 1<<20 {
		v.out = nil
	}
}

func stepLabel(ev runbook.Event) string {
	id := ev.Step
	if ev.Data["phase"] == runbook.PhaseRollback {
		id = "rollback/" + id
	}
	if ev.Host != "" && ev.Host != "local" {
		id += "@" + ev.Host
	}
	return id
}

func (v *runView) event(ev runbook.Event) {
	if ev.Type == runbook.EventStepOutput {
		v.enqueue(ev)
		return
	}
	v.waitPrinted()
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.json != nil {
		v.json.Encode(ev)
		return
	}
	if bookkeeping(ev) {
		return
	}
	v.flushLocked()
	// Event texts carry output too (a failed check's reason, an answer):
	// each line is neutralised like the output itself.
	lines := strings.Split(describeEvent(ev, v.titles), "\n")
	for i, l := range lines {
		lines[i] = sanitizeOutput(l, false)
	}
	fmt.Fprintln(v.w, strings.Join(lines, "\n"))
}

// enqueue hands an output event to the printer, starting it if needed.
func (v *runView) enqueue(ev runbook.Event) {
	v.qmu.Lock()
	defer v.qmu.Unlock()
	if v.q == nil {
		v.q = make(chan printItem, printQueue)
		go v.printer(v.q)
	}
	v.q <- printItem{ev: ev}
}

func (v *runView) printer(q <-chan printItem) {
	widened := false
	for it := range q {
		if it.done != nil {
			close(it.done)
			continue
		}
		if !widened && len(it.ev.Text) >= 32<<10 {
			widened = true
			widenPipe(v.w)
		}
		v.mu.Lock()
		v.printOutput(it.ev)
		v.mu.Unlock()
	}
}

// widenPipe gives w, when it is a pipe (`| tee`, a CI runner), a buffer of
// 1 MiB instead of 64 KiB, so that the lines of a chunk of output pouring
// in go in one write instead of several turns of the reader.
func widenPipe(w io.Writer) {
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeNamedPipe != 0 {
			executor.WidenPipe(f)
		}
	}
}

// waitPrinted returns once the output handed over so far is written.
func (v *runView) waitPrinted() { v.drainPrinter(false) }

// drainPrinter waits until the output handed over so far is written; with
// stop, the printer ends too (the next output starts another).
func (v *runView) drainPrinter(stop bool) {
	v.qmu.Lock()
	if v.q == nil {
		v.qmu.Unlock()
		return
	}
	done := make(chan struct{})
	v.q <- printItem{done: done}
	if stop {
		close(v.q)
		v.q = nil
	}
	v.qmu.Unlock()
	<-done
}

// printOutput writes an output event; the caller holds mu.
func (v *runView) printOutput(ev runbook.Event) {
	if v.json != nil {
		if out, ok := jsonOutputEvent(v.out[:0], ev); ok {
			v.w.Write(out)
			v.keepOut(out)
			return
		}
		v.json.Encode(ev)
		return
	}
	label := stepLabel(ev)
	key := label + "\x00" + ev.Stream
	buf := v.partial[key]
	if buf == nil {
		buf = &bytes.Buffer{}
		v.partial[key] = buf
	}
	// The lines of a chunk are written in one call: a write per line
	// (a chunk of `yes` holds thousands) would cost a system call each.
	out := v.out[:0]
	text := ev.Text
	if buf.Len() > 0 {
		// The chunk continues the line the previous one left unfinished.
		line, rest, complete := strings.Cut(text, "\n")
		buf.WriteString(line)
		if complete || buf.Len() >= maxViewLine {
			out = appendLine(out, label, buf.Bytes(), v.color)
			buf.Reset()
		}
		text = rest
	}
	if strings.IndexByte(text, '\n') >= 0 { // ahead of the LastIndexByte, which is a plain loop
		end := strings.LastIndexByte(text, '\n')
		out = appendLines(out, label, text[:end+1], v.color)
		text = text[end+1:]
	}
	if text != "" {
		buf.WriteString(text)
		// A line longer than maxViewLine is shown in pieces, so one
		// endless line cannot grow the view's memory.
		if buf.Len() >= maxViewLine {
			out = appendLine(out, label, buf.Bytes(), v.color)
			buf.Reset()
		}
	}
	if len(out) > 0 {
		v.w.Write(out)
	}
	v.keepOut(out)
}

// flush writes the output handed over and the unfinished lines, and stops
// the printer (the next output starts another).
func (v *runView) flush() {
	v.drainPrinter(true)
	v.mu.Lock()
	defer v.mu.Unlock()
	v.flushLocked()
}

func (v *runView) flushLocked() {
	for key, buf := range v.partial {
		if buf.Len() > 0 {
			label, _, _ := strings.Cut(key, "\x00")
			v.w.Write(appendLine(nil, label, buf.Bytes(), v.color))
			buf.Reset()
		}
	}
}

// bookkeeping reports whether an event is the engine's own record (a
// spawned process group, for resume) that the text views leave out.
func bookkeeping(ev runbook.Event) bool { return ev.Type == runbook.EventStepSpawned }

// describeEvent is one line about an event, for the live view and show.
func describeEvent(ev runbook.Event, titles map[string]string) string {
	label := stepLabel(ev)
	d := ev.Data
	switch ev.Type {
	case runbook.EventRunStarted:
		return fmt.Sprintf("== run started by %s: %s (env %s)", d["user"], ev.Text, d["env"])
	case runbook.EventRunResumed:
		return fmt.Sprintf("== run resumed by %s", ev.Actor)
	case runbook.EventRunInterrupted:
		return "== interrupted: " + ev.Text
	case runbook.EventRunCancelled:
		return fmt.Sprintf("== cancelled by %s: %s", ev.Actor, ev.Text)
	case runbook.EventRunFinished:
		if ev.Text != "" {
			return "== run " + d["status"] + ": " + ev.Text
		}
		return "== run " + d["status"]
	case runbook.EventStepStarted:
		// A host's start (label step@host) has its step's title, of its
		// phase: a rollback step's, not a main step's of the same id.
		t := titles[strings.TrimSuffix(label, "@"+ev.Host)]
		s := fmt.Sprintf("-> [%s] %s", label, t)
		if ev.Attempt > 1 {
			s += fmt.Sprintf(" (attempt %d)", ev.Attempt)
		}
		return s
	case runbook.EventStepVerified:
		return fmt.Sprintf("   [%s] %s %s: %s", label, d["kind"], d["result"], ev.Text)
	case runbook.EventStepRetry:
		return fmt.Sprintf("   [%s] failed (%s); attempt %d in %s", label, ev.Text, ev.Attempt, d["backoff"])
	case runbook.EventStepPublished:
		var kv []string
		for _, k := range sortedKeys(d) {
			if k != "phase" {
				kv = append(kv, k+"="+d[k])
			}
		}
		return fmt.Sprintf("   [%s] outputs: %s", label, strings.Join(kv, " "))
	case runbook.EventStepFinished:
		s := fmt.Sprintf("<- [%s] %s", label, d["status"])
		if ms := d["duration_ms"]; ms != "" {
			s += " in " + ms + "ms"
		}
		if ev.Text != "" {
			s += ": " + ev.Text
		}
		return s
	case runbook.EventStepSkipped:
		return fmt.Sprintf("<- [%s] skipped: %s", label, ev.Text)
	case runbook.EventGateWaiting:
		return fmt.Sprintf("?? [%s] Go/No-Go (%s distinct approver(s)): %s", label, d["approvers"], strings.TrimSpace(ev.Text))
	case runbook.EventGateDecided:
		return fmt.Sprintf("!! [%s] %s by %s: %s", label, d["decision"], ev.Actor, ev.Text)
	case runbook.EventManualWaiting:
		return fmt.Sprintf("?? [%s] manual step: %s", label, strings.TrimSpace(ev.Text))
	case runbook.EventManualDone:
		return fmt.Sprintf("!! [%s] confirmed by %s %s", label, ev.Actor, ev.Text)
	case runbook.EventAskWaiting:
		return fmt.Sprintf("?? [%s] %s", label, ev.Text)
	case runbook.EventAskAnswered:
		return fmt.Sprintf("!! [%s] %s chose %s: %s", label, ev.Actor, d["choice"], ev.Text)
	case runbook.EventAnomaly:
		return fmt.Sprintf("!! note by %s: %s", ev.Actor, ev.Text)
	case runbook.EventGuardBreached:
		if ev.Step != "" {
			return fmt.Sprintf("!! guard breached during [%s]: %s (%s)", label, ev.Text, d["action"])
		}
		return fmt.Sprintf("!! guard breached: %s (%s)", ev.Text, d["action"])
	case runbook.EventRollbackStart:
		return "== rolling back: " + ev.Text
	case runbook.EventRollbackFinish:
		return "== rollback " + d["status"]
	}
	return fmt.Sprintf("   %s %s %s", ev.Type, label, ev.Text)
}

// cliDecider answers what a run waits for: --yes for gates and manual
// steps, else a prompt on the terminal, else nobody (the wait fails with a
// message saying what to do).
type cliDecider struct {
	e     *env
	yes   bool
	tty   bool
	actor string
	view  *runView
	live  *liveTerm // the live view asks its questions when it runs
	mu    sync.Mutex
	// protected: the run's environment is protected, where nobody decides
	// a gate on their own word in a local process (not even with --yes).
	protected bool
	// runID names the run in the hint for other approvers.
	runID string
	// mutant: the run is one of rehearse --mutate's (a mutant, or the
	// rollback that restores the environment) in a throwaway store, where
	// --yes gives a gate every approval it needs.
	mutant bool
}

func (d *cliDecider) Decide(ctx context.Context, w runbook.Waiting, lastErr error) (runbook.DecisionRequest, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	req := runbook.DecisionRequest{Kind: w.Kind, Step: w.Step, Phase: w.Phase, Actor: d.actor}
	if d.protected && w.Kind == runbook.WaitKindGate {
		return req, &engine.NoDecisionError{Reason: "gate " + w.Step + " is in a protected environment: " + protectedGateHint}
	}
	if d.yes && w.Kind == runbook.WaitKindGate && approvedBy(w, d.actor) {
		// --yes is one person's approval. A mutant, which counts for
		// nothing, approves again as distinct stand-ins; a run waits for
		// the others, who decide with `opsbook decide` (the engine reads
		// their decisions from the store and closes the question).
		if d.mutant {
			req.Actor = fmt.Sprintf("%s (mutant approver %d)", d.actor, len(w.Approvals)+1)
			req.Choice, req.Reason = runbook.DecisionGo, "--yes"
			return req, nil
		}
		fmt.Fprintf(d.e.stderr, "opsbook: gate %s has your approval and needs %d distinct approvers: each other approver runs `opsbook decide %s %s go --reason …` in this workspace\n",
			w.Step, w.Approvers, d.runID, w.Step)
		<-ctx.Done()
		return req, ctx.Err()
	}
	if d.yes && lastErr == nil && (w.Kind == runbook.WaitKindGate || w.Kind == runbook.WaitKindManual) {
		req.Reason = "--yes"
		if w.Kind == runbook.WaitKindGate {
			req.Choice = runbook.DecisionGo
		}
		return req, nil
	}
	if !d.tty {
		what := map[string]string{
			runbook.WaitKindGate:   "gate " + w.Step + " needs a Go/No-Go decision",
			runbook.WaitKindManual: "manual step " + w.Step + " needs a confirmation",
			runbook.WaitKindAsk:    "step " + w.Step + " asks what to do (" + strings.Join(w.Options, ", ") + ")",
		}[w.Kind]
		hint := "there is no terminal to ask: rerun with --yes to approve as " + d.actor + ", or run in a terminal"
		if w.Kind == runbook.WaitKindAsk {
			hint = "there is no terminal to ask: run it in a terminal, or answer with `opsbook resume RUN --answer CHOICE`"
		}
		if lastErr != nil {
			hint = lastErr.Error()
		}
		return req, &engine.NoDecisionError{Reason: what + ", but " + hint}
	}
	if d.live != nil {
		return d.decideLive(ctx, w, lastErr, req)
	}
	if lastErr != nil {
		fmt.Fprintf(d.e.stderr, "opsbook: %v\n", lastErr)
	}
	d.view.flush()
	line := func(prompt string) (string, error) {
		fmt.Fprint(d.e.stderr, prompt)
		type res struct {
			s   string
			err error
		}
		ch := make(chan res, 1)
		go func() {
			s, err := stdinLines(d.e).ReadString('\n')
			ch <- res{strings.TrimSpace(s), err}
		}()
		select {
		case <-ctx.Done():
			fmt.Fprintln(d.e.stderr, "(decided elsewhere)")
			return "", ctx.Err()
		case r := <-ch:
			if r.err != nil && r.s == "" {
				return "", fmt.Errorf("read the answer: %w", r.err)
			}
			return r.s, nil
		}
	}
	var err error
	switch w.Kind {
	case runbook.WaitKindGate:
		for req.Choice != runbook.DecisionGo && req.Choice != runbook.DecisionNoGo {
			if req.Choice, err = line(fmt.Sprintf("Gate %s — %s\nDecide go or no-go: ", w.Step, strings.TrimSpace(w.Text))); err != nil {
				return req, err
			}
		}
		for req.Reason == "" {
			if req.Reason, err = line("Reason (recorded with your decision): "); err != nil {
				return req, err
			}
		}
	case runbook.WaitKindManual:
		if req.Reason, err = line(fmt.Sprintf("Manual step %s — %s\nPress Enter when done (an optional note first): ", w.Step, strings.TrimSpace(w.Text))); err != nil {
			return req, err
		}
	case runbook.WaitKindAsk:
		for !contains(w.Options, req.Choice) {
			if req.Choice, err = line(fmt.Sprintf("Choose %s: ", strings.Join(w.Options, " / "))); err != nil {
				return req, err
			}
		}
		if req.Reason, err = line("Reason: "); err != nil {
			return req, err
		}
	}
	return req, nil
}

// approvedBy reports whether actor has already approved the gate w.
func approvedBy(w runbook.Waiting, actor string) bool {
	for _, a := range w.Approvals {
		if a.Actor == actor {
			return true
		}
	}
	return false
}

// planParams is --dry-run's view of the parameters: the values given (flags,
// OPSBOOK_PARAM_*) are checked as a run checks them, but nothing is prompted
// for and a required value not given yet is only marked, since no value
// changes which commands the plan holds — a reviewer can read the plan
// before anyone has the values.
func planParams(e *env, defs []runbook.Param, flags []string) (map[string]string, error) {
	quiet := *e
	quiet.stdin = strings.NewReader("") // no prompts
	given, err := collectParams(&quiet, defs, flags, nil)
	if err != nil {
		return nil, err
	}
	// A required value not given yet is optional for the check, and marked.
	var missing []string
	planned := make([]runbook.Param, len(defs))
	for i, d := range defs {
		planned[i] = d
		if _, ok := given[d.Name]; !ok && d.Required && !d.HasDefault {
			planned[i].Required = false
			missing = append(missing, d.Name)
		}
	}
	resolved, err := runbook.ResolveParams(planned, given)
	if err != nil {
		return nil, badInput("invalid parameters:\n%v", err)
	}
	for _, name := range missing {
		resolved[name] = "<required: give it at run time>"
	}
	return resolved, nil
}

// printPlan is --dry-run: what would run, and nothing runs.
func printPlan(w io.Writer, p *engine.Plan, from string) error {
	d := p.Document
	fmt.Fprintf(w, "Plan: %s (%s) in %s — snapshot %s\n", d.Title, p.Runbook, p.Environment, snapshot.ShortOf(p.Snapshot))
	if d.Front.Estimate > 0 {
		fmt.Fprintf(w, "Estimate: %s\n", d.Front.Estimate)
	}
	for _, k := range sortedKeys(p.Params) {
		v := p.Params[k]
		for _, def := range d.Front.Params {
			if def.Name == k && def.SecretParam() {
				v = "***"
			}
		}
		fmt.Fprintf(w, "Param %s=%s\n", k, v)
	}
	for _, g := range d.Front.Guards {
		fmt.Fprintf(w, "Guard %s: %s %s %g every %s, on breach %s\n", g.Name, g.Query, g.Op, g.Threshold, g.Interval, orText(g.OnBreach, "pause"))
	}
	fmt.Fprintln(w)
	printSteps(w, d.Steps, from, "")
	printFanout(w, p)
	if p.Rollback != nil {
		fmt.Fprintf(w, "\nRollback (%s), run when a step with on_fail=rollback fails, an operator chooses it, or a guard breaches with on_breach=rollback:\n\n", d.Front.Rollback)
		printSteps(w, p.Rollback.Steps, "", "rollback/")
	} else {
		fmt.Fprintln(w, "\nNo rollback document: on_fail=rollback would fail the run.")
	}
	fmt.Fprintln(w, "\nDry run: nothing was executed.")
	return nil
}

func printSteps(w io.Writer, steps []runbook.Step, from, prefix string) {
	skipping := from != ""
	for i, s := range steps {
		if s.ID == from {
			skipping = false
		}
		head := fmt.Sprintf("%d. [%s%s] %s", i+1, prefix, s.ID, s.Title)
		if skipping {
			head += " (skipped: --from " + from + ")"
		}
		fmt.Fprintln(w, head)
		var attrs []string
		attrs = append(attrs, "target "+orText(s.Target, "local"))
		if s.SkipNoHosts {
			attrs = append(attrs, "skipped if it selects no host")
		}
		if s.Timeout > 0 {
			attrs = append(attrs, "timeout "+s.Timeout.String())
		}
		if s.Retries > 0 {
			attrs = append(attrs, fmt.Sprintf("retries %d", s.Retries))
		}
		attrs = append(attrs, "on_fail "+orText(string(s.OnFail), "abort"))
		if s.Estimate > 0 {
			attrs = append(attrs, "estimate "+s.Estimate.String())
		}
		if s.Idempotent {
			attrs = append(attrs, "idempotent")
		}
		fmt.Fprintf(w, "   %s\n", strings.Join(attrs, ", "))
		block := func(label string, b *runbook.Block) {
			if b == nil {
				return
			}
			fmt.Fprintf(w, "   %s:\n", label)
			for _, l := range strings.Split(strings.TrimRight(b.Body, "\n"), "\n") {
				fmt.Fprintf(w, "     | %s\n", l)
			}
		}
		block("run ("+orText(blockLang(s.Action), "sh")+")", s.Action)
		block("verify", s.Verify)
		if s.Expect != nil {
			kind := "expect output to contain"
			if s.Expect.Regex {
				kind = "expect output to match"
			}
			block(kind, s.Expect)
		}
		if s.Until != nil {
			block(fmt.Sprintf("poll every %s for up to %s until it succeeds", s.Until.Interval, s.Until.Timeout), s.Until)
		}
		if s.Manual != nil {
			block("manual (the operator confirms)", s.Manual)
		}
		if s.Gate != nil {
			block(fmt.Sprintf("Go/No-Go gate (%d distinct approver(s))", max(s.Approvers, 1)), s.Gate)
		}
		if s.Call != nil {
			ref, _ := s.Call.Attr("runbook")
			block("call "+ref+" with", s.Call)
		}
		if len(s.Outputs) > 0 {
			fmt.Fprintf(w, "   publishes: %s\n", strings.Join(s.Outputs, ", "))
		}
	}
}

func blockLang(b *runbook.Block) string {
	if b == nil {
		return ""
	}
	return b.Lang
}

func orText(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// elapsed formats a duration for tables.
func elapsed(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(100 * time.Millisecond).String()
}

// protectedGateHint says how gates of a protected environment are decided.
const protectedGateHint = "its Go/No-Go decisions come from authenticated people on the server, never from a local process (--yes or a terminal answer is your own word, under a name git lets anyone choose). " +
	"Run it through the server — add --server URL or set OPSBOOK_SERVER — and approvers decide on the run page or with `POST /api/v1/runs/{id}/gate`"

// refuseLocalProtectedGates refuses, before anything runs, a local run in
// a protected environment whose runbook, rollback plan or called runbooks
// have a gate: nobody could decide it (issue #12: --yes approved one's own
// production gate, and approvers=2 could never be met).
func refuseLocalProtectedGates(p *engine.Plan) error {
	if !p.Protected {
		return nil
	}
	docs := []*runbook.Document{p.Document, p.Rollback}
	for _, d := range p.Called {
		docs = append(docs, d)
	}
	for _, d := range docs {
		if d == nil {
			continue
		}
		for _, st := range d.Steps {
			if st.Gate != nil {
				return &ExitError{Code: ExitRefused, Err: fmt.Errorf("%s:%d: environment %s is protected and step %s is a gate: %s",
					d.Path, st.Pos.Line, p.Environment, st.ID, protectedGateHint)}
			}
		}
	}
	return nil
}
