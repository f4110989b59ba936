package ui

import (
	"bytes"
	"errors"
	"net/http"
	"strings"

	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/server"
	"github.com/opsbook/opsbook/internal/store"
)

// The run page's lifecycle actions beyond answering: run again (the same
// snapshot and parameters, optionally from a step), resume an interrupted
// run, and publish a runbook's current content. Each goes through the
// same server methods as the API, as the signed-in user.
func (h *handlers) registerRunActions() {
	h.s.Handle("POST /runs/{id}/rerun", auth.Need(auth.RunbookRun, h.scopeRun), "UI: run a run's snapshot again with its parameters, from its first step or a chosen one", h.rerun)
	h.s.Handle("POST /runs/{id}/resume", auth.Need(auth.RunbookRun, h.scopeRun), "UI: resume an interrupted run", h.resume)
	h.s.Handle("POST /publish", auth.Need(auth.RunbookEdit, h.scopeRunForm), "UI: publish a runbook's current content as its published snapshot", h.publish)
}

func (h *handlers) rerun(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	p := principal(r)
	run, err := h.s.Store().GetRun(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	from := strings.TrimSpace(r.PostFormValue("from"))
	req := server.StartRequest{Runbook: run.Runbook, Environment: run.Environment, Params: run.Params, From: from}
	scope := auth.Scope{Project: h.s.Catalog().ProjectOf(run.Runbook), Environment: run.Environment}
	if p.Can(auth.RunbookEdit, scope) {
		req.Snapshot = run.Snapshot // the very content that ran
	} else {
		// Without RunbookEdit only the published snapshot runs: fine when
		// it holds the document this run ran.
		same := false
		if pub, err := h.s.Store().Published(ctx, run.Runbook); err == nil {
			a, errA := h.s.Store().GetSnapshot(ctx, pub.Hash)
			b, errB := h.s.Store().GetSnapshot(ctx, run.Snapshot)
			same = errA == nil && errB == nil && bytes.Equal(a.Source, b.Source)
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if !same {
			return server.Errorf(http.StatusConflict, "changed", "the published snapshot of %s is no longer the one this run used; start a run of the new one from the runbook's page (running an older snapshot needs RunbookEdit)", run.Runbook)
		}
	}
	next, err := h.s.StartRun(ctx, p, req, h.s.RemoteAddr(r))
	if err != nil {
		return err
	}
	redirect(w, r, "/runs/"+next.ID)
	return nil
}

func (h *handlers) resume(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	run, err := h.s.Store().GetRun(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	retry := r.PostFormValue("retry_interrupted")
	switch retry {
	case "", runbook.ChoiceRetry, runbook.ChoiceSkip, runbook.ChoiceAbort:
	default:
		return server.BadRequest("retry_interrupted must be retry, skip or abort, not %q", retry)
	}
	if err := h.s.ResumeRun(ctx, run, principal(r).Name, retry); err != nil {
		return h.refused(w, r, err)
	}
	if err := h.s.AuditRequest(r, "run.resume", "run/"+run.ID, map[string]string{"retry_interrupted": retry}); err != nil {
		return err
	}
	return h.panel(w, r, http.StatusOK, nil)
}

func (h *handlers) publish(w http.ResponseWriter, r *http.Request) error {
	rel := r.PostFormValue("runbook")
	if _, err := h.s.Publish(r, principal(r), rel, r.PostFormValue("content")); err != nil {
		return err
	}
	redirect(w, r, "/runbooks/"+rel+"?flash=published")
	return nil
}
