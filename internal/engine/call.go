package engine

import (
	"context"
	"fmt"

	"github.com/opsbook/opsbook/internal/runbook"
)

// runCall runs the steps of a called runbook in place of the call step.
// Their events carry the step id "CALL/SUB" (the call step's id, a slash,
// the called step's id), so the log and a resume see each one; the called
// runbook's parameters are the call block's bindings, given to its
// commands as environment variables like any parameter.
func (r *runner) runCall(ctx context.Context, phase string, doc *runbook.Document, step *runbook.Step) phaseResult {
	wctx := context.WithoutCancel(ctx)
	ref, _ := step.Call.Attr("runbook")
	called := r.plan.Called[ref]
	fail := func(detail string) phaseResult {
		res := attemptResult{exitCode: -1, detail: detail, attempt: 1}
		return r.onFail(ctx, phase, doc, step, 1, res)
	}
	if called == nil {
		return fail(fmt.Sprintf("the called runbook %s was not loaded; check the path (relative to %s)", ref, doc.Path))
	}
	given := map[string]string{}
	env := r.env(step, phase, 1, "local", nil)
	for _, b := range step.Call.Bindings {
		if b.From != "" {
			v, ok := env[b.From]
			if !ok {
				return fail(fmt.Sprintf("binding %s=$%s: the caller has no parameter, variable or output %s", b.Name, b.From, b.From))
			}
			given[b.Name] = v
		} else {
			given[b.Name] = b.Value
		}
	}
	params, err := runbook.ResolveParams(called.Front.Params, given)
	if err != nil {
		return fail(fmt.Sprintf("calling %s: %v", ref, err))
	}
	for _, p := range called.Front.Params {
		if p.SecretParam() {
			r.mask.Add(params[p.Name])
		}
	}
	if info := r.inspect(phase, step.ID); !info.exists {
		if err := r.append(wctx, r.stepEvent(runbook.EventStepStarted, phase, step, "", 1, withText("calls "+ref))); err != nil {
			return phaseResult{outcome: outcomeFailed, reason: err.Error()}
		}
	}
	sub := *called
	sub.Steps = make([]runbook.Step, len(called.Steps))
	for i, s := range called.Steps {
		s.ID = step.ID + "/" + s.ID
		sub.Steps[i] = s
	}
	saved := r.callParams
	r.callParams = params
	res := r.runSubSteps(ctx, phase, &sub)
	r.callParams = saved
	switch res.outcome {
	case outcomeDone:
		if err := r.append(wctx, r.stepEvent(runbook.EventStepFinished, phase, step, "", 1,
			withData("status", string(runbook.StepSucceeded)))); err != nil {
			return phaseResult{outcome: outcomeFailed, reason: err.Error()}
		}
		return res
	case outcomeFailed:
		return fail("the called runbook failed: " + res.reason)
	}
	return res
}

// runSubSteps runs a called runbook's steps (ids already prefixed).
func (r *runner) runSubSteps(ctx context.Context, phase string, doc *runbook.Document) phaseResult {
	for i := range doc.Steps {
		if ctx.Err() != nil {
			return phaseResult{outcome: outcomeCancelled}
		}
		if res := r.runGuarded(ctx, phase, doc, &doc.Steps[i]); res.outcome != outcomeDone {
			return res
		}
	}
	return phaseResult{outcome: outcomeDone}
}
