package runs

import (
	"context"
	"fmt"
	"net/http"
	"slices"

	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/runbook"
)

// DecideGate records p's decision on the gate run waits at, after the
// checks a gate needs beyond RunbookApprove: no self-approval in a
// protected environment, and the gate's roles= teams.
func (s *Service) DecideGate(ctx context.Context, p *auth.Principal, run runbook.Run, decision, reason string) (runbook.Event, error) {
	if err := s.refuseReported(ctx, run, "decide"); err != nil {
		return runbook.Event{}, err
	}
	state, err := s.engine.State(ctx, run.ID)
	if err != nil {
		return runbook.Event{}, err
	}
	wt := state.Waiting
	if wt == nil || wt.Kind != runbook.WaitKindGate {
		return runbook.Event{}, Errorf(http.StatusConflict, "not_waiting", "run %s is not waiting at a gate", run.ID)
	}
	if !s.MayDecideGate(p, run, wt) {
		return runbook.Event{}, fmt.Errorf("%w: whoever started a run in a protected environment may not approve its gates, and a gate with roles= only takes its teams", auth.ErrForbidden)
	}
	ev, err := s.engine.Decide(ctx, run.ID, runbook.DecisionRequest{Kind: runbook.WaitKindGate, Step: wt.Step, Phase: wt.Phase, Actor: p.Name, Choice: decision, Reason: reason})
	if err != nil {
		return runbook.Event{}, Errorf(http.StatusConflict, "decision_refused", "%v", err)
	}
	return ev, nil
}

// MayDecideGate reports whether p, holding RunbookApprove, may decide the
// gate run waits at: not its starter in a protected environment, and a
// member of one of the gate's roles= teams (admins excepted), as recorded
// with the question.
func (s *Service) MayDecideGate(p *auth.Principal, run runbook.Run, w *runbook.Waiting) bool {
	if w == nil || w.Kind != runbook.WaitKindGate {
		return false
	}
	if env, err := s.catalog.Workspace().Environment(run.Environment); err == nil && env.Protected && run.CreatedBy == p.Name {
		return false
	}
	return len(w.Roles) == 0 || p.IsAdmin() || slices.ContainsFunc(p.Teams, func(t string) bool { return slices.Contains(w.Roles, t) })
}

// Answer records p's answer to the manual step or guided-failure question
// run waits at; kind says which the caller means, so a stale page cannot
// answer a different question.
func (s *Service) Answer(ctx context.Context, p *auth.Principal, run runbook.Run, kind, choice, reason string) (runbook.Event, error) {
	if kind != runbook.WaitKindManual && kind != runbook.WaitKindAsk {
		return runbook.Event{}, BadRequest("kind must be manual or ask, not %q", kind)
	}
	if err := s.refuseReported(ctx, run, "answer"); err != nil {
		return runbook.Event{}, err
	}
	state, err := s.engine.State(ctx, run.ID)
	if err != nil {
		return runbook.Event{}, err
	}
	wt := state.Waiting
	if wt == nil || wt.Kind != kind {
		return runbook.Event{}, Errorf(http.StatusConflict, "not_waiting", "run %s is not waiting for a %s answer", run.ID, kind)
	}
	ev, err := s.engine.Decide(ctx, run.ID, runbook.DecisionRequest{Kind: kind, Step: wt.Step, Phase: wt.Phase, Actor: p.Name, Choice: choice, Reason: reason})
	if err != nil {
		return runbook.Event{}, Errorf(http.StatusConflict, "decision_refused", "%v", err)
	}
	return ev, nil
}
