package engine

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/opsbook/opsbook/internal/runbook"
)

// waitSpec is one question the run waits on.
type waitSpec struct {
	kind      string // gate | manual | ask
	phase     string
	step      *runbook.Step
	text      string
	options   []string // ask
	approvers int      // gate
	openSeq   int64    // the *.waiting event when resuming an open wait; 0 to record a new one
	preset    string   // an ask answered in advance (resume --answer)
	guard     string   // ask: the breached guard it is about
}

// await records that the run waits (unless the wait is already open) and
// blocks until the question is resolved by decisions in the log, from this
// process's Decider, Engine.Decide or another process. It returns the
// resolving decision (for a gate: the No-Go if there is one, else the last
// Go), or stop=true with the phase result when the run must end instead.
func (r *runner) await(ctx context.Context, w waitSpec) (d runbook.Decision, res phaseResult, stop bool) {
	wctx := context.WithoutCancel(ctx)
	seq := w.openSeq
	if seq == 0 {
		var t runbook.EventType
		opts := []eventOpt{withText(w.text)}
		switch w.kind {
		case runbook.WaitKindGate:
			t = runbook.EventGateWaiting
			opts = append(opts, withData("approvers", strconv.Itoa(w.approvers)))
			if w.step != nil && len(w.step.ApproverRoles) > 0 {
				// Who may decide travels with the question, so every
				// deciding process (CLI, server, another node) applies it,
				// for gates of rollback plans and called runbooks too.
				opts = append(opts, withData("roles", strings.Join(w.step.ApproverRoles, ",")))
			}
		case runbook.WaitKindManual:
			t = runbook.EventManualWaiting
		case runbook.WaitKindAsk:
			t = runbook.EventAskWaiting
			opts = append(opts, withData("options", strings.Join(w.options, ",")))
			if w.guard != "" {
				opts = append(opts, withData("guard", w.guard))
			}
		}
		if err := r.append(wctx, r.stepEvent(t, w.phase, w.step, "", 0, opts...)); err != nil {
			return d, phaseResult{outcome: outcomeFailed, reason: err.Error()}, true
		}
		r.appendMu.Lock()
		seq = r.state.LastSeq
		if r.state.Waiting != nil {
			seq = r.state.Waiting.Seq
		}
		r.appendMu.Unlock()
	}
	r.setStatus(wctx, runbook.RunWaiting)
	defer r.setStatus(wctx, runbook.RunRunning)
	if r.opts.Parked != nil {
		r.opts.Parked(true)
		defer r.opts.Parked(false)
	}

	// The question as the log has it, for the Decider.
	question := func() (runbook.Waiting, bool) {
		r.appendMu.Lock()
		defer r.appendMu.Unlock()
		if cur := r.state.Waiting; cur != nil && cur.Seq == seq {
			return *cur, true
		}
		return runbook.Waiting{}, false
	}

	// The Decider runs in a goroutine of its own (it may wait for a
	// person); the wait does not end before it does, so nothing it writes
	// (a prompt, a hint) comes after what the caller does next.
	dctx, stopDecider := context.WithCancel(ctx)
	var deciding sync.WaitGroup
	defer func() {
		stopDecider()
		deciding.Wait()
	}()
	type answer struct {
		req runbook.DecisionRequest
		err error
	}
	answers := make(chan answer, 1)
	ask := func(q runbook.Waiting, lastErr error) {
		if w.preset != "" {
			p := w.preset
			w.preset = "" // answered once; a refused preset falls back to the Decider
			answers <- answer{req: runbook.DecisionRequest{Kind: q.Kind, Step: q.Step, Phase: q.Phase,
				Actor: r.opts.Actor, Choice: p, Reason: "given on the command line when resuming"}}
			return
		}
		if r.opts.Decider == nil {
			return
		}
		deciding.Go(func() {
			req, err := r.opts.Decider.Decide(dctx, q, lastErr)
			select {
			case answers <- answer{req, err}:
			case <-dctx.Done():
			}
		})
	}
	if q, open := question(); open {
		ask(q, nil)
	}

	poll := time.NewTicker(r.e.cfg.PollInterval)
	defer poll.Stop()
	for {
		if _, open := question(); !open {
			return r.resolution(w, seq), phaseResult{}, false
		}
		select {
		case <-ctx.Done():
			return d, phaseResult{outcome: outcomeCancelled}, true
		case b := <-r.guards.breaches():
			if res, stop := r.onBreach(ctx, w.phase, w.step, b); stop {
				return d, res, true
			}
		case a := <-answers:
			if a.err != nil {
				var nd *NoDecisionError
				if errors.As(a.err, &nd) {
					reason := fmt.Sprintf("step %s: %s", w.step.ID, nd.Reason)
					r.append(wctx, r.stepEvent(runbook.EventStepFinished, w.phase, w.step, "", 0, withText(nd.Reason),
						withData("status", string(runbook.StepFailed))))
					return d, phaseResult{outcome: outcomeFailed, reason: reason}, true
				}
				if ctx.Err() != nil {
					continue
				}
				return d, phaseResult{outcome: outcomeFailed, reason: fmt.Sprintf("step %s: asking for a decision: %v", w.step.ID, a.err)}, true
			}
			if _, err := r.e.Decide(wctx, r.run.ID, a.req); err != nil {
				if r.opts.Decider == nil {
					return d, phaseResult{outcome: outcomeFailed, reason: fmt.Sprintf("step %s: %v", w.step.ID, err)}, true
				}
				if q, open := question(); open {
					ask(q, err)
				}
				continue
			}
			// The decision may leave the gate open (more approvers needed).
			if err := r.catchUp(wctx); err != nil {
				return d, phaseResult{outcome: outcomeFailed, reason: err.Error()}, true
			}
			if q, open := question(); open {
				ask(q, nil)
			}
		case <-r.wakeCh:
			if err := r.catchUp(wctx); err != nil {
				return d, phaseResult{outcome: outcomeFailed, reason: err.Error()}, true
			}
		case <-poll.C:
			if err := r.catchUp(wctx); err != nil {
				return d, phaseResult{outcome: outcomeFailed, reason: err.Error()}, true
			}
		}
	}
}

// resolution is the decision that closed the wait opened at seq.
func (r *runner) resolution(w waitSpec, seq int64) runbook.Decision {
	r.appendMu.Lock()
	defer r.appendMu.Unlock()
	var last runbook.Decision
	for _, d := range r.state.Decisions {
		if d.Seq <= seq || d.Kind != w.kind || d.Step != w.step.ID || d.Phase != w.phase {
			continue
		}
		if d.Kind == runbook.WaitKindGate && d.Choice == runbook.DecisionNoGo {
			return d
		}
		last = d
	}
	return last
}

// setStatus keeps the run index's status in step with waits, so lists
// show which runs wait for someone.
func (r *runner) setStatus(ctx context.Context, s runbook.RunStatus) {
	if r.run.Status == s {
		return
	}
	r.run.Status = s
	r.e.cfg.Store.UpdateRun(ctx, r.run)
}
