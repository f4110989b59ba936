package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/opsbook/opsbook/internal/executor"
	"github.com/opsbook/opsbook/internal/mask"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/store"
)

// runner executes one run in this process.
type runner struct {
	e      *Engine
	run    runbook.Run
	plan   *Plan
	params map[string]string // resolved, secrets included
	// rollbackParams are the rollback document's parameters, resolved by
	// its own declarations when the rollback starts (runbook.RollbackParams);
	// its steps see them over the runbook's.
	rollbackParams map[string]string
	opts           ExecOptions
	lease          *store.Lease
	mask           *mask.Masker
	local          executor.Executor // runs the steps on the local host

	// appendMu serialises writes so that events are applied to state and
	// shown to the observer in Seq order.
	appendMu sync.Mutex
	state    *runbook.RunState

	outputs    map[string]string // published outputs visible to later steps (unmasked)
	callParams map[string]string // parameters of the called runbook whose steps run now

	wakeCh chan struct{}

	cancelMu     sync.Mutex
	cancelRun    context.CancelCauseFunc
	cancelActor  string
	cancelReason string

	guards *guardMonitor

	// failedOnly is the failed fan-out step that Resume with FailedOnly
	// re-runs on its unfinished hosts; cleared once taken up.
	failedOnly string

	// recordErr is the first failure to write the run's log (a full disk,
	// a read-only store): the run cannot go on, and drive ends it by
	// endUnrecorded. Guarded by appendMu.
	recordErr error

	// held are the events of a step that succeeded (its step.published and
	// step.finished), masked, held back to commit in the transaction of the
	// run's next append — normally the next step's step.started, whose
	// fsync before the spawn then covers them too: one commit per step
	// fewer. Every append carries them first, and runPhase commits them on
	// its way out, so none is missing from the log when anything else
	// happens (a spawn, a question, a rollback, the run's end). A kill -9
	// while they are held leaves the log as a kill just before they were
	// recorded does: the step looks interrupted. Guarded by appendMu.
	held []runbook.Event
}

// errLeaseLost stops a run whose lease another process took over.
var errLeaseLost = errors.New("lease lost")

// errCancelled is the cause of a run cancelled by Engine.Cancel.
var errCancelled = errors.New("cancelled")

func newRunner(e *Engine, run runbook.Run, p *Plan, params map[string]string, o ExecOptions, lease *store.Lease, local executor.Executor) *runner {
	return &runner{
		e: e, run: run, plan: p, params: params, opts: o, lease: lease, local: local,
		mask:    newMasker(p, params),
		state:   runbook.NewRunState(run.ID),
		outputs: map[string]string{},
		wakeCh:  make(chan struct{}, 1),
	}
}

func (r *runner) wake() {
	select {
	case r.wakeCh <- struct{}{}:
	default:
	}
}

func (r *runner) cancel(actor, reason string) {
	r.cancelMu.Lock()
	defer r.cancelMu.Unlock()
	if r.cancelActor == "" {
		r.cancelActor, r.cancelReason = actor, reason
	}
	if r.cancelRun != nil {
		r.cancelRun(errCancelled)
	}
}

// outcome is how a phase of the run ended.
type outcome int

const (
	outcomeDone      outcome = iota // every step done
	outcomeFailed                   // a step failed and the policy aborted
	outcomeRollback                 // the policy or an operator asked for the rollback document
	outcomeCancelled                // ctx was cancelled
)

type phaseResult struct {
	outcome outcome
	reason  string // why it failed or why rollback
}

// drive runs the run to its end. All store writes use a context that
// survives cancellation, so a cancelled run still records why it stopped.
func (r *runner) drive(parent context.Context, resume bool) (runbook.RunStatus, error) {
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	r.cancelMu.Lock()
	r.cancelRun = cancel
	r.cancelMu.Unlock()
	wctx := context.WithoutCancel(parent)

	// The lease is renewed every third of its ttl; losing it stops the run
	// at once, since another process now owns it.
	renewDone := make(chan struct{})
	defer close(renewDone)
	go func() {
		t := time.NewTicker(r.e.cfg.LeaseTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-renewDone:
				return
			case <-t.C:
				if err := r.lease.Renew(wctx); err != nil && errors.Is(err, store.ErrLocked) {
					cancel(errLeaseLost)
					return
				}
			}
		}
	}()

	if err := r.catchUp(wctx); err != nil {
		return "", err
	}
	s := r.state
	if r.opts.FailedOnly {
		id, err := failedFanoutStep(s)
		if err != nil {
			return "", err
		}
		r.failedOnly = id
	} else if s.Status.Finished() {
		return s.Status, nil
	}
	for k, v := range s.Outputs {
		r.outputs[k] = v
	}
	if err := r.checkLostOutputs(s); err != nil {
		return "", err
	}
	now := time.Now()
	// Anything after run.started means an earlier execution got somewhere.
	if resume || s.LastSeq > 1 {
		var evs []runbook.Event
		if s.LastSeq > 1 && (s.Status == runbook.RunRunning || s.Status == runbook.RunWaiting) {
			evs = append(evs, runbook.Event{Type: runbook.EventRunInterrupted, Text: describeInterruption(s)})
		}
		resumed := runbook.Event{Type: runbook.EventRunResumed, Actor: r.opts.Actor}
		if r.failedOnly != "" {
			resumed.Text = "re-running the hosts of step " + r.failedOnly + " that did not succeed"
			resumed.Data = map[string]string{"failed_only": r.failedOnly}
		}
		evs = append(evs, resumed)
		if err := r.append(wctx, evs...); err != nil {
			return "", err
		}
		// Before anything re-runs or asks about the interrupted step: stop
		// what the dead process left running for it.
		if err := r.stopOrphans(wctx); err != nil {
			return "", err
		}
	}
	r.run.Status = runbook.RunRunning
	r.run.FinishedAt = time.Time{}
	if r.run.StartedAt.IsZero() {
		r.run.StartedAt = now
	}
	if err := r.e.cfg.Store.UpdateRun(wctx, r.run); err != nil {
		return "", fmt.Errorf("mark run %s running: %w", r.run.ID, err)
	}

	r.guards = r.startGuards(ctx)
	defer r.guards.stop()

	var res phaseResult
	if s.Rollback == nil {
		res = r.runPhase(ctx, runbook.PhaseMain, r.plan.Document)
	} else {
		// The run was rolling back when it stopped: finish the rollback.
		res = phaseResult{outcome: outcomeRollback, reason: s.Rollback.Reason}
	}
	if cause := context.Cause(ctx); errors.Is(cause, errLeaseLost) {
		return "", fmt.Errorf("run %s: %w to another process; it continues there", r.run.ID, store.ErrLocked)
	}
	if err := r.recordingFailed(); err != nil {
		return r.endUnrecorded(wctx, err)
	}

	final := runbook.RunSucceeded
	switch res.outcome {
	case outcomeFailed:
		final = runbook.RunFailed
	case outcomeCancelled:
		final = runbook.RunCancelled
	case outcomeRollback:
		final = r.rollback(ctx, wctx, res.reason)
		if err := r.recordingFailed(); err != nil {
			return r.endUnrecorded(wctx, err)
		}
	}
	if final == runbook.RunCancelled {
		r.cancelMu.Lock()
		actor, reason := r.cancelActor, r.cancelReason
		r.cancelMu.Unlock()
		if actor == "" {
			actor = r.opts.Actor
		}
		if reason == "" {
			reason = "interrupted by the operator"
		}
		if err := r.append(wctx, runbook.Event{Type: runbook.EventRunCancelled, Actor: actor, Text: reason}); err != nil {
			return "", err
		}
	}
	if final == runbook.RunSucceeded {
		if err := r.startWatch(wctx); err != nil {
			// The operation succeeded; a watch that could not start is an
			// anomaly on the record, not a failure of the run.
			r.append(wctx, runbook.Event{Type: runbook.EventAnomaly, Actor: "opsbook", Text: "the watch after the run did not start: " + err.Error()})
		}
	}
	// The last event and the run's final status commit together.
	row := r.run
	row.Status, row.FinishedAt = final, time.Now()
	finished := runbook.Event{Type: runbook.EventRunFinished, Data: map[string]string{"status": string(final)}}
	if res.outcome == outcomeRollback && final == runbook.RunFailed {
		finished.Text = "the rollback did not succeed: the environment is as the failed rollback left it, neither rolled forward nor back"
	}
	if err := r.appendWithRow(wctx, &row, finished); err != nil {
		return r.endUnrecorded(wctx, err)
	}
	r.run = row
	return final, nil
}

func (r *runner) recordingFailed() error {
	r.appendMu.Lock()
	defer r.appendMu.Unlock()
	return r.recordErr
}

// UnrecordedError ends a run whose log could not be written (the disk is
// full, the store became read-only) and whose failure could not be
// recorded either: the log ends where the write failed, with the step
// that was running still "running". The message says so and what to do;
// the CLI prints it on stderr.
type UnrecordedError struct {
	RunID string
	Err   error  // the write that failed
	State string // what the log says now, e.g. "step big running"
}

func (e *UnrecordedError) Error() string {
	return fmt.Sprintf("run %s stopped: its record could not be written (%v), nor the reason it stopped; the log ends with %s. Free space in (or make writable) the run store, then `opsbook resume %s`: it records the interruption and asks whether to retry the unfinished step",
		e.RunID, e.Err, e.State, e.RunID)
}

func (e *UnrecordedError) Unwrap() error { return e.Err }

// endUnrecorded ends a run whose log could not be written: it stops there
// (nothing more runs unrecorded) and records why — each step still
// running failed with the write error, then run.finished — retrying for
// Config.RecordRetry in case space comes back. When that fails too, the run
// is left as the log says (running; `opsbook runs` shows it interrupted
// once this process is gone) and the error says why.
func (r *runner) endUnrecorded(ctx context.Context, cause error) (runbook.RunStatus, error) {
	reason := "the run's record could not be written: " + cause.Error()
	var running []string
	r.appendMu.Lock()
	// A succeeded step's held events go first (appendWithRow below carries
	// them): that step did not fail.
	held := map[string]bool{}
	for _, ev := range r.held {
		if ev.Type == runbook.EventStepFinished {
			held[ev.Data["phase"]+"/"+ev.Step] = true
		}
	}
	var evs []runbook.Event
	for _, st := range r.state.AllSteps() {
		if held[st.Phase+"/"+st.ID] {
			continue
		}
		if st.Status == runbook.StepRunning || st.Status == runbook.StepWaiting {
			ev := runbook.Event{Type: runbook.EventStepFinished, Step: st.ID, Text: reason,
				Data: map[string]string{"status": string(runbook.StepFailed)}}
			if st.Phase != runbook.PhaseMain && st.Phase != "" {
				ev.Data["phase"] = st.Phase
			}
			evs = append(evs, ev)
			running = append(running, "step "+phasePrefix(st.Phase)+st.ID+" "+string(st.Status))
		}
	}
	r.recordErr = nil
	r.appendMu.Unlock()
	evs = append(evs, runbook.Event{Type: runbook.EventRunFinished, Text: reason, Data: map[string]string{"status": string(runbook.RunFailed)}})
	deadline := time.Now().Add(r.e.cfg.RecordRetry)
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		row := r.run
		row.Status, row.FinishedAt = runbook.RunFailed, time.Now()
		if err := r.appendWithRow(ctx, &row, evs...); err == nil {
			r.run = row
			return runbook.RunFailed, nil
		}
		if time.Now().Add(wait).After(deadline) {
			break
		}
		time.Sleep(wait)
	}
	state := "the run between steps"
	if len(running) > 0 {
		state = strings.Join(running, ", ")
	}
	return "", &UnrecordedError{RunID: r.run.ID, Err: cause, State: state}
}

// failedFanoutStep finds the step a --failed-only resume re-runs: the last
// failed main-runbook step that ran on inventory hosts, in a run that
// failed without rolling back.
func failedFanoutStep(s *runbook.RunState) (string, error) {
	if s.Status != runbook.RunFailed || s.Rollback != nil {
		return "", fmt.Errorf("run %s is %s: --failed-only re-runs the failed hosts of a run that failed (without rolling back); resume it without --failed-only", s.RunID, s.Status)
	}
	for i := len(s.Steps) - 1; i >= 0; i-- {
		if st := s.Steps[i]; st.Status == runbook.StepFailed && st.Fanout {
			return st.ID, nil
		}
	}
	return "", fmt.Errorf("run %s failed, but not at a step on inventory hosts: --failed-only re-runs the failed hosts of such a step; start a new run (opsbook run --from STEP) instead", s.RunID)
}

func describeInterruption(s *runbook.RunState) string {
	var parts []string
	for _, st := range s.AllSteps() {
		switch st.Status {
		case runbook.StepRunning:
			parts = append(parts, fmt.Sprintf("step %s%s was running (attempt %d)", phasePrefix(st.Phase), st.ID, st.Attempts))
		case runbook.StepWaiting:
			parts = append(parts, fmt.Sprintf("step %s%s was waiting", phasePrefix(st.Phase), st.ID))
		}
	}
	if len(parts) == 0 {
		return "the run's process stopped between steps"
	}
	return "the run's process stopped: " + strings.Join(parts, "; ")
}

func phasePrefix(phase string) string {
	if phase == runbook.PhaseRollback {
		return "rollback/"
	}
	return ""
}

// rollback runs the rollback document and returns the run's final status.
func (r *runner) rollback(ctx, wctx context.Context, reason string) runbook.RunStatus {
	doc := r.plan.Rollback
	if doc == nil {
		r.append(wctx, runbook.Event{Type: runbook.EventAnomaly, Actor: "opsbook",
			Text: "rollback requested (" + reason + ") but the runbook names no rollback document in its front matter"})
		return runbook.RunFailed
	}
	supplied := maps.Clone(r.params)
	maps.Copy(supplied, r.outputs)
	params, err := runbook.RollbackParams(doc, supplied)
	if err != nil {
		// Only a value a step should have published can be missing here:
		// the rest was checked before the run started.
		evs := []runbook.Event{{Type: runbook.EventRollbackFinish, Text: "the rollback cannot start: " + err.Error(),
			Data: map[string]string{"status": string(runbook.StepFailed)}}}
		if r.state.Rollback == nil || r.state.Rollback.StartedAt.IsZero() {
			evs = append([]runbook.Event{{Type: runbook.EventRollbackStart, Text: reason, Data: map[string]string{"document": doc.Path}}}, evs...)
		}
		r.append(wctx, evs...)
		return runbook.RunFailed
	}
	for _, p := range doc.Front.Params {
		if p.SecretParam() {
			r.mask.Add(params[p.Name])
		}
	}
	r.rollbackParams = params
	if r.state.Rollback == nil || r.state.Rollback.StartedAt.IsZero() {
		if err := r.append(wctx, runbook.Event{Type: runbook.EventRollbackStart, Text: reason,
			Data: map[string]string{"document": doc.Path}}); err != nil {
			return runbook.RunFailed
		}
	}
	res := r.runPhase(ctx, runbook.PhaseRollback, doc)
	status := runbook.StepSucceeded
	switch res.outcome {
	case outcomeCancelled:
		r.append(wctx, runbook.Event{Type: runbook.EventRollbackFinish, Text: "cancelled", Data: map[string]string{"status": string(runbook.StepFailed)}})
		return runbook.RunCancelled
	case outcomeFailed, outcomeRollback:
		status = runbook.StepFailed
	}
	r.append(wctx, runbook.Event{Type: runbook.EventRollbackFinish, Text: res.reason, Data: map[string]string{"status": string(status)}})
	if status == runbook.StepFailed {
		// rolled_back promises the environment is back where it was; a
		// rollback that failed leaves it between the two.
		return runbook.RunFailed
	}
	return runbook.RunRolledBack
}

// append masks and durably records events, then applies them to the state
// and shows them to the observer, in Seq order. When another writer (a
// decision from Decide, a note) got a Seq in between, the gap is read back
// from the store first.
func (r *runner) append(ctx context.Context, evs ...runbook.Event) error {
	return r.appendWithRow(ctx, nil, evs...)
}

// controlData are the event data keys whose values are the engine's own
// vocabulary — the options of a question, statuses, kinds, numbers, ids —
// never masked: a secret that happens to be one of those words must not
// rewrite them, or the UI's buttons (value="re***ry") and the decisions
// checked against the options would break. Free text and published
// outputs are masked.
var controlData = map[string]bool{
	"options": true, "choice": true, "decision": true, "status": true, "kind": true, "result": true,
	"phase": true, "approvers": true, "roles": true, "guard": true, "action": true, "threshold": true,
	"value": true, "hosts": true, "batch": true, "backoff": true, "pgid": true, "exit_code": true,
	"duration_ms": true, "document": true, "failed_only": true, "secret_outputs": true, "block": true,
}

// appendMasked records events whose texts are masked already (output).
func (r *runner) appendMasked(ctx context.Context, evs ...runbook.Event) error {
	return r.record(ctx, nil, evs...)
}

// appendWithRow masks and records events as append does and, when row is
// not nil, writes the run's row in the same transaction.
func (r *runner) appendWithRow(ctx context.Context, row *runbook.Run, evs ...runbook.Event) error {
	r.maskEvents(evs)
	return r.record(ctx, row, evs...)
}

func (r *runner) maskEvents(evs []runbook.Event) {
	for i := range evs {
		evs[i].Text = r.mask.String(evs[i].Text)
		for k, v := range evs[i].Data {
			if evs[i].Type == runbook.EventStepPublished || !controlData[k] {
				evs[i].Data[k] = r.mask.String(v)
			}
		}
	}
}

// hold masks the events of a step that succeeded and holds them back for
// the run's next append (see runner.held). They keep the time they
// happened at, not the time of that commit.
func (r *runner) hold(evs ...runbook.Event) {
	r.maskEvents(evs)
	now := time.Now()
	for i := range evs {
		if evs[i].Time.IsZero() {
			evs[i].Time = now
		}
	}
	r.appendMu.Lock()
	defer r.appendMu.Unlock()
	r.held = append(r.held, evs...)
}

// flushHeld commits the held events, if any, on their own.
func (r *runner) flushHeld(ctx context.Context) error {
	return r.record(ctx, nil)
}

// record appends masked events, after the held ones (and writes row with
// them, when not nil), then applies them to the state and shows them to
// the observer.
func (r *runner) record(ctx context.Context, row *runbook.Run, evs ...runbook.Event) error {
	r.appendMu.Lock()
	defer r.appendMu.Unlock()
	if len(r.held) > 0 {
		// Kept on failure: endUnrecorded records them.
		evs = append(slices.Clip(r.held), evs...)
	}
	var stored []runbook.Event
	var err error
	if row != nil {
		stored, err = r.e.cfg.Store.AppendEventsAndUpdateRun(ctx, *row, evs...)
	} else {
		stored, err = r.e.cfg.Store.AppendEvents(ctx, r.run.ID, evs...)
	}
	if err != nil {
		err = fmt.Errorf("record events of run %s: %w", r.run.ID, err)
		if r.recordErr == nil {
			r.recordErr = err
		}
		return err
	}
	r.held = nil
	if len(stored) > 0 && stored[0].Seq != r.state.LastSeq+1 {
		if err := r.catchUpLocked(ctx); err != nil {
			return err
		}
	}
	for _, ev := range stored {
		r.applyLocked(ev)
	}
	return nil
}

func (r *runner) applyLocked(ev runbook.Event) {
	if ev.Seq <= r.state.LastSeq {
		return
	}
	r.state.Apply(ev)
	if r.opts.Observe != nil {
		r.opts.Observe(ev)
	}
}

// catchUp reads events this runner has not seen (decisions from other
// processes) and applies them. Output text is not kept.
func (r *runner) catchUp(ctx context.Context) error {
	r.appendMu.Lock()
	defer r.appendMu.Unlock()
	return r.catchUpLocked(ctx)
}

func (r *runner) catchUpLocked(ctx context.Context) error {
	for ev, err := range r.e.cfg.Store.AllEvents(ctx, r.run.ID, r.state.LastSeq) {
		if err != nil {
			return fmt.Errorf("read the log of run %s: %w", r.run.ID, err)
		}
		r.applyLocked(ev)
	}
	return nil
}

// env is what a step's command sees: variables, parameters, outputs of
// earlier steps and the built-ins.
func (r *runner) env(step *runbook.Step, phase string, attempt int, host string, extra map[string]string) map[string]string {
	env := make(map[string]string, len(r.plan.Variables)+len(r.params)+len(r.outputs)+10)
	maps.Copy(env, r.plan.Variables)
	maps.Copy(env, r.plan.Secrets)
	maps.Copy(env, r.params)
	if phase == runbook.PhaseRollback {
		maps.Copy(env, r.rollbackParams)
	}
	maps.Copy(env, r.outputs)
	maps.Copy(env, r.callParams)
	maps.Copy(env, extra)
	env["OPSBOOK_RUN_ID"] = r.run.ID
	env["OPSBOOK_ENV"] = r.plan.Environment
	env["OPSBOOK_STEP"] = phasePrefix(phase) + step.ID
	env["OPSBOOK_ATTEMPT"] = fmt.Sprint(attempt)
	env["OPSBOOK_HOST"] = host
	env["OPSBOOK_WORKSPACE"] = r.plan.Workspace
	env["OPSBOOK_RUNBOOK"] = r.plan.Runbook
	env["OPSBOOK_SNAPSHOT"] = r.plan.Snapshot
	return env
}

// localExecutor is the executor for steps on the local host: the
// configured one, else one of this run's own, which close removes (its
// private directory of scripts and output files).
func (e *Engine) localExecutor(p *Plan) (executor.Executor, func()) {
	if e.cfg.Local != nil {
		return e.cfg.Local, func() {}
	}
	l := executor.NewLocal(executor.LocalOptions{Dir: p.Workspace})
	return l, func() { l.Close() }
}
