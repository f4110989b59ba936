package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/opsbook/opsbook/internal/executor"
	"github.com/opsbook/opsbook/internal/runbook"
)

// stepInfo is a copy of what the log says about a step, read under the
// state lock.
type stepInfo struct {
	exists    bool
	status    runbook.StepStatus
	attempts  int
	decisions []runbook.Decision
	waiting   *runbook.Waiting // the run's open question, if it is about this step
}

func (r *runner) inspect(phase, id string) stepInfo {
	r.appendMu.Lock()
	defer r.appendMu.Unlock()
	st := r.state.StepIn(phase, id)
	if st == nil {
		return stepInfo{}
	}
	info := stepInfo{exists: true, status: st.Status, attempts: st.Attempts, decisions: append([]runbook.Decision(nil), st.Decisions...)}
	if w := r.state.Waiting; w != nil && w.Step == id && w.Phase == phase {
		cp := *w
		info.waiting = &cp
	}
	return info
}

// runPhase runs a document's steps in order, skipping those the log says
// are done.
func (r *runner) runPhase(ctx context.Context, phase string, doc *runbook.Document) phaseResult {
	// The last step's held events are recorded before whatever follows the
	// phase (its end, a rollback, the run's end) happens; a failure to
	// record them ends the run like any other (drive: recordingFailed).
	defer r.flushHeld(context.WithoutCancel(ctx))
	from := ""
	if phase == runbook.PhaseMain {
		r.appendMu.Lock()
		from = r.state.From
		r.appendMu.Unlock()
	}
	reached := from == ""
	for i := range doc.Steps {
		step := &doc.Steps[i]
		if !reached && step.ID == from {
			reached = true
		}
		if !reached {
			if info := r.inspect(phase, step.ID); !info.exists {
				if err := r.append(context.WithoutCancel(ctx), r.stepEvent(runbook.EventStepSkipped, phase, step, "", 0,
					withText("started with --from "+from))); err != nil {
					return phaseResult{outcome: outcomeFailed, reason: err.Error()}
				}
			}
			continue
		}
		if ctx.Err() != nil {
			return phaseResult{outcome: outcomeCancelled}
		}
		if res, stop := r.guardCheckpoint(ctx, phase, step); stop {
			return res
		}
		res := r.runGuarded(ctx, phase, doc, step)
		if res.outcome != outcomeDone {
			return res
		}
	}
	if n := len(doc.Steps); n > 0 {
		// A breach reported after the last step began is not dropped: the
		// run does not succeed before it is handled.
		if res, stop := r.guardCheckpoint(ctx, phase, &doc.Steps[n-1]); stop {
			return res
		}
	}
	return phaseResult{outcome: outcomeDone}
}

type eventOpt func(*runbook.Event)

func withText(s string) eventOpt { return func(ev *runbook.Event) { ev.Text = s } }
func withData(kv ...string) eventOpt {
	return func(ev *runbook.Event) {
		for i := 0; i+1 < len(kv); i += 2 {
			ev.Data[kv[i]] = kv[i+1]
		}
	}
}

func (r *runner) stepEvent(t runbook.EventType, phase string, step *runbook.Step, host string, attempt int, opts ...eventOpt) runbook.Event {
	ev := runbook.Event{Type: t, Step: step.ID, Host: host, Attempt: attempt, Data: map[string]string{}}
	if phase != runbook.PhaseMain {
		ev.Data["phase"] = phase
	}
	for _, o := range opts {
		o(&ev)
	}
	if len(ev.Data) == 0 {
		ev.Data = nil
	}
	return ev
}

// runStep brings one step to an end, starting from whatever the log says
// about it.
func (r *runner) runStep(ctx context.Context, phase string, doc *runbook.Document, step *runbook.Step) phaseResult {
	wctx := context.WithoutCancel(ctx)
	info := r.inspect(phase, step.ID)
	if r.failedOnly != "" && phase == runbook.PhaseMain && step.ID == r.failedOnly {
		r.failedOnly = ""
		return r.execStep(ctx, phase, doc, step, info.attempts+1, r.unfinishedHosts(phase, step))
	}
	switch {
	case info.waiting != nil:
		// The run stopped while this step waited: wait again for the same
		// question; decisions recorded meanwhile count.
		return r.resumeWait(ctx, phase, doc, step, info)
	case info.exists && (info.status == runbook.StepSucceeded || info.status == runbook.StepSkipped):
		return phaseResult{outcome: outcomeDone}
	case info.exists && info.status == runbook.StepFailed:
		return r.afterRecordedFailure(step, phase, info)
	case info.exists && info.status == runbook.StepRunning && step.Gate == nil && step.Manual == nil && step.Call == nil:
		return r.resumeInterrupted(ctx, phase, doc, step, info)
	}

	// A gate or manual step that was running when the process died had its
	// wait resolved (else info.waiting would be set): the decisions in the
	// log decide. A call step goes on with the called steps not yet done.
	resolved := info.exists && info.status == runbook.StepRunning
	switch {
	case step.Gate != nil:
		return r.runGate(ctx, phase, step, resolved)
	case step.Manual != nil:
		return r.runManual(ctx, phase, step, resolved)
	case step.Call != nil:
		return r.runCall(ctx, phase, doc, step)
	case step.Action == nil && step.Until == nil:
		// A heading with prose only: nothing to execute, nothing to record
		// but that it was passed.
		if err := r.append(wctx, r.stepEvent(runbook.EventStepSkipped, phase, step, "", 0, withText("no action, gate, manual or call block"))); err != nil {
			return phaseResult{outcome: outcomeFailed, reason: err.Error()}
		}
		return phaseResult{outcome: outcomeDone}
	}
	if hosts, err := r.plan.StepHosts(doc, step); err == nil && hosts != nil && len(hosts) == 0 {
		// no_hosts=skip: e.g. the replicas of a cluster that has none.
		if err := r.append(wctx, r.stepEvent(runbook.EventStepSkipped, phase, step, "", 0, withText(r.plan.NoHostsText(doc, step)))); err != nil {
			return phaseResult{outcome: outcomeFailed, reason: err.Error()}
		}
		return phaseResult{outcome: outcomeDone}
	}
	return r.execStep(ctx, phase, doc, step, 1, nil)
}

// afterRecordedFailure continues after a step whose failure is in the log
// (the process died before the consequence was recorded).
func (r *runner) afterRecordedFailure(step *runbook.Step, phase string, info stepInfo) phaseResult {
	reason := fmt.Sprintf("step %s failed", step.ID)
	policy := step.OnFail
	for i := len(info.decisions) - 1; i >= 0; i-- {
		d := info.decisions[i]
		if d.Kind == runbook.WaitKindAsk {
			policy = runbook.OnFail(d.Choice)
			break
		}
		if d.Kind == runbook.WaitKindGate && d.Choice == runbook.DecisionNoGo {
			policy = r.noGoPolicy(phase, step)
			break
		}
	}
	switch policy {
	case runbook.OnFailContinue, runbook.OnFail(runbook.ChoiceSkip):
		return phaseResult{outcome: outcomeDone}
	case runbook.OnFailRollback:
		if phase == runbook.PhaseMain {
			return phaseResult{outcome: outcomeRollback, reason: reason}
		}
	}
	return phaseResult{outcome: outcomeFailed, reason: reason}
}

// resumeInterrupted handles an action step that was running when the
// process died.
func (r *runner) resumeInterrupted(ctx context.Context, phase string, doc *runbook.Document, step *runbook.Step, info stepInfo) phaseResult {
	next := info.attempts + 1
	if step.Idempotent || r.opts.RetryInterrupted == runbook.ChoiceRetry {
		// A fan-out step is taken up on the hosts that had not succeeded:
		// the others are done, as a completed step is.
		return r.execStep(ctx, phase, doc, step, next, r.unfinishedHosts(phase, step))
	}
	options := []string{runbook.ChoiceRetry, runbook.ChoiceSkip, runbook.ChoiceAbort}
	q := fmt.Sprintf("step %s was running (attempt %d) when the run was interrupted, and it is not marked idempotent: it may have done part of its work. Retry it, skip it (if it is done, or you did it by hand), or abort?",
		step.ID, info.attempts)
	if phase == runbook.PhaseMain && r.plan.Rollback != nil {
		options = append(options, runbook.ChoiceRollback)
		q = strings.TrimSuffix(q, ", or abort?") + ", abort, or roll back?"
	}
	return r.askAfterFailure(ctx, phase, doc, step, info.attempts, q, options, r.opts.RetryInterrupted)
}

// execStep runs attempts of an action step from the given attempt number
// until it succeeds or its failure policy ends it.
//
// only limits a fan-out step to some of its hosts (nil: all of them); its
// automatic retries stay within the same hosts.
func (r *runner) execStep(ctx context.Context, phase string, doc *runbook.Document, step *runbook.Step, attempt int, only hostSet) phaseResult {
	wctx := context.WithoutCancel(ctx)
	for {
		res := r.attempt(ctx, phase, doc, step, attempt, only)
		if res.ok {
			return phaseResult{outcome: outcomeDone}
		}
		if res.err != nil {
			return phaseResult{outcome: outcomeFailed, reason: res.err.Error()}
		}
		if ctx.Err() != nil {
			r.append(wctx, r.finishEvent(phase, step, res, stopText(ctx)))
			return phaseResult{outcome: outcomeCancelled}
		}
		// attempt counts from 1; retries counts the extra attempts.
		if attempt <= step.Retries {
			backoff := r.backoff(step, attempt)
			if err := r.append(wctx, r.stepEvent(runbook.EventStepRetry, phase, step, "", attempt+1,
				withText(res.detail), withData("backoff", backoff.String()))); err != nil {
				return phaseResult{outcome: outcomeFailed, reason: err.Error()}
			}
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				r.append(wctx, r.finishEvent(phase, step, res, stopText(ctx)+" during backoff"))
				return phaseResult{outcome: outcomeCancelled}
			case <-t.C:
			}
			attempt++
			continue
		}
		return r.onFail(ctx, phase, doc, step, attempt, res)
	}
}

func (r *runner) backoff(step *runbook.Step, attempt int) time.Duration {
	base := step.Backoff
	if base <= 0 {
		base = time.Second
	}
	d := base
	for i := 1; i < attempt && d < r.e.cfg.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, r.e.cfg.MaxBackoff)
}

// finishEvent is the step.finished of a failed attempt.
func (r *runner) finishEvent(phase string, step *runbook.Step, res attemptResult, text string) runbook.Event {
	if text == "" {
		text = res.detail
	}
	return r.stepEvent(runbook.EventStepFinished, phase, step, res.host, res.attempt, withText(text),
		withData("status", string(runbook.StepFailed), "exit_code", strconv.Itoa(res.exitCode),
			"duration_ms", strconv.FormatInt(res.duration.Milliseconds(), 10)))
}

// onFail applies the step's failure policy to its last failed attempt.
func (r *runner) onFail(ctx context.Context, phase string, doc *runbook.Document, step *runbook.Step, attempt int, res attemptResult) phaseResult {
	wctx := context.WithoutCancel(ctx)
	reason := fmt.Sprintf("step %s failed: %s", step.ID, res.detail)
	policy := step.OnFail
	if phase == runbook.PhaseRollback && policy == runbook.OnFailRollback {
		policy = runbook.OnFailAbort // a rollback step cannot roll back the rollback
	}
	switch policy {
	case runbook.OnFailContinue:
		if err := r.append(wctx, r.finishEvent(phase, step, res, "")); err != nil {
			return phaseResult{outcome: outcomeFailed, reason: err.Error()}
		}
		return phaseResult{outcome: outcomeDone}
	case runbook.OnFailRollback:
		r.append(wctx, r.finishEvent(phase, step, res, ""))
		return phaseResult{outcome: outcomeRollback, reason: reason + " (on_fail=rollback)"}
	case runbook.OnFailAsk:
		options := []string{runbook.ChoiceRetry, runbook.ChoiceSkip, runbook.ChoiceAbort}
		if r.isFanout(phase, step) {
			options = []string{runbook.ChoiceRetryFailed, runbook.ChoiceRetry, runbook.ChoiceSkip, runbook.ChoiceAbort}
		}
		if phase == runbook.PhaseMain && r.plan.Rollback != nil {
			options = append(options, runbook.ChoiceRollback)
		}
		return r.askAfterFailure(ctx, phase, doc, step, attempt, reason+". What now: "+strings.Join(options, ", ")+"?", options, "")
	}
	r.append(wctx, r.finishEvent(phase, step, res, ""))
	return phaseResult{outcome: outcomeFailed, reason: reason}
}

// askAfterFailure asks the operator what to do about a failed or
// interrupted step and does it.
func (r *runner) askAfterFailure(ctx context.Context, phase string, doc *runbook.Document, step *runbook.Step, attempt int, question string, options []string, preset string) phaseResult {
	d, res, stop := r.await(ctx, waitSpec{kind: runbook.WaitKindAsk, phase: phase, step: step, text: question,
		options: options, preset: preset})
	if stop {
		return res
	}
	return r.applyAnswer(ctx, phase, doc, step, attempt, d)
}

func (r *runner) applyAnswer(ctx context.Context, phase string, doc *runbook.Document, step *runbook.Step, attempt int, d runbook.Decision) phaseResult {
	wctx := context.WithoutCancel(ctx)
	failed := attemptResult{host: "", attempt: attempt, exitCode: -1,
		detail: fmt.Sprintf("%s chose %s: %s", d.Actor, d.Choice, d.Reason)}
	switch d.Choice {
	case runbook.ChoiceRetry:
		if step.Call != nil {
			return r.runCall(ctx, phase, doc, step)
		}
		return r.execStep(ctx, phase, doc, step, attempt+1, nil)
	case runbook.ChoiceRetryFailed:
		return r.execStep(ctx, phase, doc, step, attempt+1, r.unfinishedHosts(phase, step))
	case runbook.ChoiceSkip:
		text := "skipped by " + d.Actor
		if d.Reason != "" {
			text += ": " + d.Reason
		}
		if err := r.append(wctx, r.stepEvent(runbook.EventStepSkipped, phase, step, "", 0, withText(text),
			func(ev *runbook.Event) { ev.Actor = d.Actor })); err != nil {
			return phaseResult{outcome: outcomeFailed, reason: err.Error()}
		}
		return phaseResult{outcome: outcomeDone}
	case runbook.ChoiceRollback:
		r.append(wctx, r.finishEvent(phase, step, failed, ""))
		return phaseResult{outcome: outcomeRollback, reason: fmt.Sprintf("step %s failed; %s chose to roll back", step.ID, d.Actor)}
	}
	r.append(wctx, r.finishEvent(phase, step, failed, ""))
	return phaseResult{outcome: outcomeFailed, reason: fmt.Sprintf("step %s failed; %s chose to abort", step.ID, d.Actor)}
}

// resumeWait re-enters a wait the log shows open.
func (r *runner) resumeWait(ctx context.Context, phase string, doc *runbook.Document, step *runbook.Step, info stepInfo) phaseResult {
	w := info.waiting
	spec := waitSpec{kind: w.Kind, phase: phase, step: step, text: w.Text, options: w.Options, openSeq: w.Seq, approvers: w.Approvers}
	if w.Kind == runbook.WaitKindAsk {
		spec.preset = r.opts.RetryInterrupted
	}
	d, res, stop := r.await(ctx, spec)
	if stop {
		return res
	}
	switch w.Kind {
	case runbook.WaitKindGate:
		return r.gateDecided(ctx, phase, step, d)
	case runbook.WaitKindManual:
		return r.manualConfirmed(ctx, phase, step)
	}
	return r.applyAnswer(ctx, phase, doc, step, max(info.attempts, 1), d)
}

func (r *runner) runGate(ctx context.Context, phase string, step *runbook.Step, resolved bool) phaseResult {
	if resolved {
		info := r.inspect(phase, step.ID)
		for i := len(info.decisions) - 1; i >= 0; i-- {
			if d := info.decisions[i]; d.Kind == runbook.WaitKindGate {
				return r.gateDecided(ctx, phase, step, d)
			}
		}
	}
	d, res, stop := r.await(ctx, waitSpec{kind: runbook.WaitKindGate, phase: phase, step: step,
		text: step.Gate.Body, approvers: max(step.Approvers, 1)})
	if stop {
		return res
	}
	return r.gateDecided(ctx, phase, step, d)
}

func (r *runner) gateDecided(ctx context.Context, phase string, step *runbook.Step, d runbook.Decision) phaseResult {
	wctx := context.WithoutCancel(ctx)
	if d.Choice == runbook.DecisionGo {
		if err := r.append(wctx, r.stepEvent(runbook.EventStepFinished, phase, step, "", 0,
			withData("status", string(runbook.StepSucceeded)))); err != nil {
			return phaseResult{outcome: outcomeFailed, reason: err.Error()}
		}
		return phaseResult{outcome: outcomeDone}
	}
	reason := fmt.Sprintf("No-Go at gate %s by %s: %s", step.ID, d.Actor, d.Reason)
	r.append(wctx, r.stepEvent(runbook.EventStepFinished, phase, step, "", 0, withText(reason),
		withData("status", string(runbook.StepFailed))))
	if r.noGoPolicy(phase, step) == runbook.OnFailRollback {
		return phaseResult{outcome: outcomeRollback, reason: reason}
	}
	return phaseResult{outcome: outcomeFailed, reason: reason}
}

// noGoPolicy is what a No-Go at a gate does, by one rule: the gate's own
// on_fail when it has one; else, in a runbook with a rollback document,
// roll back when a step before the gate has run a command (something may
// have changed); else abort. A rollback plan's own gates never roll back.
func (r *runner) noGoPolicy(phase string, step *runbook.Step) runbook.OnFail {
	if phase != runbook.PhaseMain {
		return runbook.OnFailAbort
	}
	if step.OnFail != "" {
		return step.OnFail
	}
	if r.plan.Rollback == nil {
		return runbook.OnFailAbort
	}
	r.appendMu.Lock()
	defer r.appendMu.Unlock()
	for _, st := range r.state.Steps {
		if st.Phase != runbook.PhaseRollback && st.ID != step.ID && st.Attempts > 0 {
			return runbook.OnFailRollback
		}
	}
	return runbook.OnFailAbort
}

func (r *runner) runManual(ctx context.Context, phase string, step *runbook.Step, resolved bool) phaseResult {
	if resolved {
		return r.manualConfirmed(ctx, phase, step)
	}
	if _, res, stop := r.await(ctx, waitSpec{kind: runbook.WaitKindManual, phase: phase, step: step, text: step.Manual.Body}); stop {
		return res
	}
	return r.manualConfirmed(ctx, phase, step)
}

func (r *runner) manualConfirmed(ctx context.Context, phase string, step *runbook.Step) phaseResult {
	if err := r.append(context.WithoutCancel(ctx), r.stepEvent(runbook.EventStepFinished, phase, step, "", 0,
		withData("status", string(runbook.StepSucceeded)))); err != nil {
		return phaseResult{outcome: outcomeFailed, reason: err.Error()}
	}
	return phaseResult{outcome: outcomeDone}
}

// attemptResult is how one attempt of a step ended.
type attemptResult struct {
	ok       bool
	err      error // recording failed: the run cannot go on
	detail   string
	host     string // "" for a step on several hosts
	attempt  int
	exitCode int
	duration time.Duration
	outputs  map[string]string // a fan-out step's merged outputs
}

// attempt runs one attempt of an action step on every host it targets (or
// only those of only, for a fan-out step) and records its start, output,
// checks and, on success, its outputs and end.
func (r *runner) attempt(ctx context.Context, phase string, doc *runbook.Document, step *runbook.Step, attempt int, only hostSet) attemptResult {
	hosts, err := r.plan.StepHosts(doc, step)
	if err != nil {
		return attemptResult{attempt: attempt, exitCode: -1, detail: err.Error()}
	}
	if hosts != nil && len(hosts) == 0 {
		// Only a re-run of a step whose hosts have left the inventory
		// since gets here (runStep skips the step otherwise): no host is
		// not a success.
		return attemptResult{attempt: attempt, exitCode: -1, detail: r.plan.NoHostsText(doc, step)}
	}
	if hosts == nil {
		res, outputs := r.attemptOn(ctx, phase, step, attempt, r.local, false)
		if !res.ok || res.err != nil {
			return res
		}
		r.succeed(phase, step, res, outputs)
		return res
	}
	if r.e.cfg.Remote == nil {
		return attemptResult{attempt: attempt, exitCode: -1,
			detail: fmt.Sprintf("step %s: target %s names inventory hosts, but this engine has no SSH executor", step.ID, step.Target)}
	}
	if only != nil {
		var sel []runbook.Host
		for _, h := range hosts {
			if only[h.Name] {
				sel = append(sel, h)
			}
		}
		hosts = sel
	}
	res := r.fanOut(ctx, phase, step, attempt, hosts)
	if !res.ok || res.err != nil {
		return res
	}
	r.succeed(phase, step, res, res.outputs)
	return res
}

// succeed records a successful step with its published outputs, in one
// write, and makes the outputs visible to later steps. The write is the
// run's next one (see runner.held): a later step sees the outputs only
// once they are recorded.
func (r *runner) succeed(phase string, step *runbook.Step, res attemptResult, outputs map[string]string) {
	evs := r.successEvents(phase, step, res, outputs)
	// Outputs that hold a secret are stored masked; say which, so that a
	// resumed run knows it cannot restore them (see checkLostOutputs).
	var secret []string
	for _, name := range slices.Sorted(maps.Keys(outputs)) {
		if r.mask.String(outputs[name]) != outputs[name] {
			secret = append(secret, name)
		}
	}
	if len(secret) > 0 {
		evs[len(evs)-1].Data["secret_outputs"] = strings.Join(secret, ",")
	}
	// Committed with whatever the run appends next, before it happens:
	// usually the next step's start, in one transaction and one fsync.
	r.hold(evs...)
	maps.Copy(r.outputs, outputs)
}

// successEvents are the step.published (when there are outputs) and the
// step.finished of a successful attempt.
func (r *runner) successEvents(phase string, step *runbook.Step, res attemptResult, outputs map[string]string) []runbook.Event {
	var evs []runbook.Event
	if len(outputs) > 0 {
		evs = append(evs, r.stepEvent(runbook.EventStepPublished, phase, step, res.host, res.attempt,
			func(ev *runbook.Event) { maps.Copy(ev.Data, outputs) }))
	}
	return append(evs, r.stepEvent(runbook.EventStepFinished, phase, step, res.host, res.attempt,
		withData("status", string(runbook.StepSucceeded), "exit_code", strconv.Itoa(res.exitCode),
			"duration_ms", strconv.FormatInt(res.duration.Milliseconds(), 10))))
}

// attemptOn runs one attempt on one host: the action, then expect, until
// and verify. The step start is on disk before the command is spawned;
// started says the caller recorded the host's step.started already.
func (r *runner) attemptOn(ctx context.Context, phase string, step *runbook.Step, attempt int, x executor.Executor, started bool) (attemptResult, map[string]string) {
	wctx := context.WithoutCancel(ctx)
	host := x.Host()
	res := attemptResult{host: host, attempt: attempt, exitCode: -1}
	if !started {
		if err := r.append(wctx, r.stepEvent(runbook.EventStepStarted, phase, step, host, attempt)); err != nil {
			res.err = err
			return res, nil
		}
	}
	start := time.Now()

	var outputs map[string]string
	if step.Action != nil {
		var match *matcher
		if step.Expect != nil {
			m, err := newMatcher(step.Expect)
			if err != nil {
				res.detail = fmt.Sprintf("%s:%d:%d: expect: %v", r.plan.Document.Path, step.Expect.Pos.Line, step.Expect.Pos.Col, err)
				res.duration = time.Since(start)
				return res, nil
			}
			match = m
		}
		out, err := r.runBlock(ctx, phase, step, attempt, x, step.Action, "action", step.Timeout, nil, match)
		res.duration = time.Since(start)
		if err != nil {
			res.err = err
			return res, nil
		}
		res.exitCode = out.result.ExitCode
		if !out.ok() {
			res.detail = out.describe(step.Timeout)
			return res, nil
		}
		outputs = out.result.Outputs
		for _, name := range step.Outputs {
			if _, ok := outputs[name]; !ok {
				res.detail = fmt.Sprintf("the step promises output %s (outputs=%s) but did not publish it: append %s=value to \"$OPSBOOK_OUTPUT\"",
					name, strings.Join(step.Outputs, ","), name)
				return res, nil
			}
		}
		if match != nil {
			passed, detail := match.result()
			if err := r.check(wctx, phase, step, host, attempt, "expect", passed, detail); err != nil {
				res.err = err
				return res, nil
			}
			if !passed {
				res.detail = "expect: " + detail
				return res, nil
			}
		}
	}
	if step.Until != nil {
		passed, detail, err := r.poll(ctx, phase, step, attempt, x, outputs)
		if err != nil {
			res.err = err
			return res, nil
		}
		if ctx.Err() != nil {
			res.detail = "cancelled"
			return res, nil
		}
		if err := r.check(wctx, phase, step, host, attempt, "until", passed, detail); err != nil {
			res.err = err
			return res, nil
		}
		if !passed {
			res.detail = "until: " + detail
			return res, nil
		}
		res.exitCode = 0
	}
	if step.Verify != nil {
		out, err := r.runBlock(ctx, phase, step, attempt, x, step.Verify, "verify", step.Verify.Timeout, outputs, nil)
		if err != nil {
			res.err = err
			return res, nil
		}
		if ctx.Err() != nil {
			res.detail = "cancelled"
			return res, nil
		}
		passed := out.ok()
		detail := "exit status 0"
		if !passed {
			detail = out.describe(step.Verify.Timeout)
		}
		if err := r.check(wctx, phase, step, host, attempt, "verify", passed, detail); err != nil {
			res.err = err
			return res, nil
		}
		if !passed {
			res.detail = "verify: " + detail
			return res, nil
		}
	}
	res.ok = true
	res.duration = time.Since(start)
	return res, outputs
}

func (r *runner) check(ctx context.Context, phase string, step *runbook.Step, host string, attempt int, kind string, passed bool, detail string) error {
	result := "pass"
	if !passed {
		result = "fail"
	}
	return r.append(ctx, r.stepEvent(runbook.EventStepVerified, phase, step, host, attempt, withText(detail),
		withData("kind", kind, "result", result)))
}

// poll runs the until block every interval until it succeeds or its
// timeout passes.
func (r *runner) poll(ctx context.Context, phase string, step *runbook.Step, attempt int, x executor.Executor, outputs map[string]string) (bool, string, error) {
	b := step.Until
	interval, timeout := b.Interval, b.Timeout
	if interval <= 0 {
		interval = 5 * time.Second
	}
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	start := time.Now()
	deadline := start.Add(timeout)
	for tries := 1; ; tries++ {
		out, err := r.runBlock(ctx, phase, step, attempt, x, b, "until", time.Until(deadline), outputs, nil)
		if err != nil {
			return false, "", err
		}
		if out.ok() {
			return true, fmt.Sprintf("succeeded after %d tries in %s", tries, time.Since(start).Round(time.Millisecond)), nil
		}
		if ctx.Err() != nil {
			return false, "cancelled", nil
		}
		if time.Now().Add(interval).After(deadline) {
			return false, fmt.Sprintf("did not succeed within %s (%d tries; last: %s)", timeout, tries, out.describe(0)), nil
		}
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return false, "cancelled", nil
		case <-t.C:
		}
	}
}

// blockOutcome is how one command of a step ended.
type blockOutcome struct {
	result executor.Result
	runErr error // the command could not be run at all
}

func (o blockOutcome) ok() bool { return o.runErr == nil && o.result.Succeeded() }

func (o blockOutcome) describe(timeout time.Duration) string {
	switch {
	case o.runErr != nil:
		return "could not run: " + o.runErr.Error()
	case o.result.TimedOut:
		return fmt.Sprintf("timed out after %s; its process group was killed", timeout)
	case o.result.Canceled:
		return "cancelled; its process group was killed"
	}
	return fmt.Sprintf("exit status %d", o.result.ExitCode)
}

// runBlock runs one command block and records its output as it streams.
// The returned error is a recording failure; a command that could not be
// started is in the outcome.
func (r *runner) runBlock(ctx context.Context, phase string, step *runbook.Step, attempt int, x executor.Executor, b *runbook.Block, kind string, timeout time.Duration, outputs map[string]string, match *matcher) (blockOutcome, error) {
	rec := r.newRecorder(phase, step, x.Host(), attempt, kind, match)
	interpreter := b.Lang
	if interpreter == "" || interpreter == "text" || interpreter == "console" {
		interpreter = "sh"
	}
	res, runErr := x.Run(ctx, executor.Command{
		Interpreter: interpreter,
		Script:      b.Body,
		NoErrexit:   b.NoErrexit,
		Env:         r.env(step, phase, attempt, x.Host(), outputs),
		Dir:         r.plan.Workspace,
		Timeout:     timeout,
		Stdout:      rec.stdout,
		Stderr:      rec.stderr,
		Started:     r.spawnRecord(phase, step, x.Host(), attempt, kind),
	})
	for _, w := range res.Warnings {
		fmt.Fprintf(rec.stderr, "opsbook: warning: %s\n", w)
	}
	if runErr != nil {
		fmt.Fprintf(rec.stderr, "opsbook: could not run the %s block: %v\n", kind, runErr)
	}
	if err := rec.close(); err != nil {
		return blockOutcome{}, err
	}
	if runErr != nil && errors.Is(runErr, context.Canceled) {
		res.Canceled = true
		runErr = nil
	}
	return blockOutcome{result: res, runErr: runErr}, nil
}
