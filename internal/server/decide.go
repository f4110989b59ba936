package server

import (
	"net/http"

	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/runbook"
)

// DecideGate records p's decision on the gate run waits at
// (runs.Service.DecideGate: no self-approval in a protected environment,
// the gate's roles= teams). The decision is audited.
func (s *Server) DecideGate(r *http.Request, p *auth.Principal, run runbook.Run, decision, reason string) (runbook.Event, error) {
	ev, err := s.runs.DecideGate(r.Context(), p, run, decision, reason)
	if err != nil {
		return runbook.Event{}, err
	}
	if err := s.AuditRequest(r, "run.gate", "run/"+run.ID, map[string]string{"step": ev.Step, "decision": decision, "reason": reason}); err != nil {
		return runbook.Event{}, err
	}
	return ev, nil
}

// MayDecideGate reports whether p, holding RunbookApprove, may decide the
// gate run waits at (runs.Service.MayDecideGate).
func (s *Server) MayDecideGate(p *auth.Principal, run runbook.Run, w *runbook.Waiting) bool {
	return s.runs.MayDecideGate(p, run, w)
}

// Answer records p's answer to the manual step or guided-failure question
// run waits at (runs.Service.Answer). The answer is audited.
func (s *Server) Answer(r *http.Request, p *auth.Principal, run runbook.Run, kind, choice, reason string) (runbook.Event, error) {
	ev, err := s.runs.Answer(r.Context(), p, run, kind, choice, reason)
	if err != nil {
		return runbook.Event{}, err
	}
	if err := s.AuditRequest(r, "run.answer", "run/"+run.ID, map[string]string{"step": ev.Step, "kind": kind, "choice": choice}); err != nil {
		return runbook.Event{}, err
	}
	return ev, nil
}
