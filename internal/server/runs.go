package server

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/runs"
	"github.com/opsbook/opsbook/internal/store"
)

// The run service (internal/runs) starts, queues, resumes, cancels and
// decides runs; the server only translates HTTP into its calls. These
// names keep the handlers' vocabulary.
type (
	// StartRequest is what POST /api/v1/runs asks for.
	StartRequest = runs.StartRequest
	// Documents are what a run executes.
	Documents = runs.Documents
)

// VariableAAD binds a sealed variable value to its environment and name.
func VariableAAD(env, name string) []byte { return runs.VariableAAD(env, name) }

// Runs is the run service: the one door for starting, resuming,
// cancelling and deciding runs.
func (s *Server) Runs() *runs.Service { return s.runs }

// StartRun validates and records a run, then queues it (runs.Service.Start).
// The principal's RunbookRun in the runbook's project and the environment
// has been checked by the route's rule.
func (s *Server) StartRun(ctx context.Context, p *auth.Principal, req StartRequest, remote string) (runbook.Run, error) {
	return s.runs.Start(ctx, p, req, remote)
}

// ResumeRun queues an interrupted (or stopped) run to continue.
func (s *Server) ResumeRun(ctx context.Context, run runbook.Run, actor, retryInterrupted string) error {
	return s.runs.Resume(ctx, run, actor, retryInterrupted)
}

// CancelRun stops a run wherever it is in this server (executing, queued)
// or, when no live process owns it, records the cancellation directly;
// the request is audited.
func (s *Server) CancelRun(r *http.Request, run runbook.Run, actor, reason string) error {
	if err := s.runs.Cancel(r.Context(), run, actor, reason); err != nil {
		return err
	}
	return s.AuditRequest(r, "run.cancel", "run/"+run.ID, map[string]string{"reason": reason})
}

// FireTrigger starts a run of the trigger's runbook as its service
// identity (runs.Service.FireTrigger).
func (s *Server) FireTrigger(ctx context.Context, t store.Trigger, params map[string]string, remote string, detail map[string]string) (runbook.Run, error) {
	return s.runs.FireTrigger(ctx, t, params, remote, detail)
}

// FireDueTriggers starts the runs that scheduled triggers owe at now
// (runs.Service.FireDueTriggers).
func (s *Server) FireDueTriggers(ctx context.Context, now time.Time) {
	s.runs.FireDueTriggers(ctx, now)
}

// Current returns the documents a run of the runbook at rel executes as
// the workspace has them now, for the run service.
func (c *Catalog) Current(rel string) (Documents, error) {
	e, ok := c.Get(rel)
	if !ok {
		return Documents{}, fmt.Errorf("runbook %s: %w; list them with GET /api/v1/runbooks", rel, store.ErrNotFound)
	}
	if runbook.HasErrors(e.Diagnostics) {
		return Documents{}, BadRequest("runbook %s has errors; fix them first: %s", e.Path, e.Diagnostics[0])
	}
	return e.Documents(), nil
}
