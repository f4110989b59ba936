package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/opsbook/opsbook/internal/apitypes"
	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/markdown"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/server"
	"github.com/opsbook/opsbook/internal/store"
)

func (h *handlers) registerRuns() {
	h.s.Handle("GET /api/v1/runs", auth.NeedSomewhere(auth.RunbookView), "Runs, newest first, that the caller may view", h.listRuns)
	h.s.Handle("POST /api/v1/runs", auth.Need(auth.RunbookRun, h.scopeFromBody), "Start a run", h.startRun)
	h.s.Handle("GET /api/v1/runs/{id}", auth.Need(auth.RunbookView, h.scopeRun), "One run with its state derived from the event log", h.getRun)
	h.s.Handle("GET /api/v1/runs/{id}/events", auth.Need(auth.RunbookView, h.scopeRun), "A run's events after ?after=SEQ", h.listEvents)
	h.s.Handle("GET /api/v1/runs/{id}/events/stream", auth.Need(auth.RunbookView, h.scopeRun), "A run's events live, as server-sent events", h.streamEvents)
	h.s.Handle("POST /api/v1/runs/{id}/cancel", auth.Need(auth.RunbookRun, h.scopeRun), "Cancel a run", h.cancelRun)
	h.s.Handle("POST /api/v1/runs/{id}/resume", auth.Need(auth.RunbookRun, h.scopeRun), "Resume an interrupted run", h.resumeRun)
	h.s.Handle("POST /api/v1/runs/{id}/gate", auth.Need(auth.RunbookApprove, h.scopeRun), "Decide the Go/No-Go gate the run waits at", h.decideGate)
	h.s.Handle("POST /api/v1/runs/{id}/answer", auth.Need(auth.RunbookRun, h.scopeRun), "Confirm a manual step or answer a guided-failure question", h.answer)
	h.s.Handle("POST /api/v1/runs/{id}/notes", auth.Need(auth.RunbookRun, h.scopeRun), "Note an anomaly on a run", h.noteRun)
	h.s.Handle("POST /api/v1/runs/reported", auth.Need(auth.RunbookRun, h.scopeFromBody), "Register a run executing in the caller's own process (opsbook run --local) to keep its record here", h.reportRun)
	h.s.Handle("POST /api/v1/runs/{id}/events", auth.Need(auth.RunbookRun, h.scopeRun), "Append a batch of a reported run's events (its reporter only; idempotent by the reporter's seq)", h.reportEvents)
}

func (h *handlers) listRuns(w http.ResponseWriter, r *http.Request) error {
	p := principal(r)
	q := r.URL.Query()
	limit, err := limitParam(r, store.DefaultRunLimit, store.MaxRunLimit)
	if err != nil {
		return err
	}
	f := store.RunFilter{Runbook: q.Get("runbook"), Environment: q.Get("environment"), Task: q.Get("task"), Before: q.Get("cursor"), Limit: limit + 1}
	for _, st := range q["status"] {
		f.Status = append(f.Status, runbook.RunStatus(st))
	}
	// Runs the caller may not view are skipped; keep reading until the page
	// is full or the runs run out, so pages stay full for scoped callers.
	out := []runbook.Run{}
	next := ""
	for {
		runs, err := h.s.Store().ListRuns(r.Context(), f)
		if err != nil {
			return err
		}
		for _, run := range runs {
			if !p.Can(auth.RunbookView, auth.Scope{Project: h.s.Catalog().ProjectOf(run.Runbook), Environment: run.Environment}) {
				continue
			}
			if len(out) == limit {
				next = out[len(out)-1].ID
				break
			}
			out = append(out, run)
		}
		if next != "" || len(runs) < f.Limit {
			break
		}
		f.Before = runs[len(runs)-1].ID
	}
	server.WriteJSON(w, http.StatusOK, apitypes.Page[runbook.Run]{Items: out, NextCursor: next})
	return nil
}

func (h *handlers) startRun(w http.ResponseWriter, r *http.Request) error {
	var req server.StartRequest
	if err := server.DecodeJSON(r, &req); err != nil {
		return err
	}
	run, err := h.s.StartRun(r.Context(), principal(r), req, h.s.RemoteAddr(r))
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/runs/"+run.ID)
	server.WriteJSON(w, http.StatusCreated, run)
	return nil
}

// stepTitles are the headings of the steps of the documents the run froze
// (its snapshot), by label; nil when the snapshot cannot be read.
func (h *handlers) stepTitles(ctx context.Context, run runbook.Run) map[string]string {
	sn, err := h.s.Store().GetSnapshot(ctx, run.Snapshot)
	if err != nil {
		return nil
	}
	titles := map[string]string{}
	if doc, _ := markdown.Parse(sn.Runbook, sn.Source); doc != nil {
		for _, s := range doc.Steps {
			titles[s.ID] = s.Title
		}
	}
	if sn.RollbackPath != "" {
		if doc, _ := markdown.Parse(sn.RollbackPath, sn.RollbackSource); doc != nil {
			for _, s := range doc.Steps {
				titles["rollback/"+s.ID] = s.Title
			}
		}
	}
	return titles
}

func (h *handlers) getRun(w http.ResponseWriter, r *http.Request) error {
	run, err := h.s.Store().GetRun(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	state, err := h.s.Engine().State(r.Context(), run.ID)
	if err != nil {
		return err
	}
	server.WriteJSON(w, http.StatusOK, apitypes.RunDetail{Run: run, Project: h.s.Catalog().ProjectOf(run.Runbook), State: state,
		StepTitles: h.stepTitles(r.Context(), run)})
	return nil
}

func afterParam(r *http.Request) (int64, error) {
	v := r.URL.Query().Get("after")
	if v == "" {
		v = r.Header.Get("Last-Event-ID")
	}
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, server.BadRequest("after must be an event sequence number, not %q", v)
	}
	return n, nil
}

func (h *handlers) listEvents(w http.ResponseWriter, r *http.Request) error {
	after, err := afterParam(r)
	if err != nil {
		return err
	}
	limit, err := limitParam(r, 1000, 10000)
	if err != nil {
		return err
	}
	run, err := h.s.Store().GetRun(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	evs, err := h.s.Store().Events(r.Context(), run.ID, after, limit)
	if err != nil {
		return err
	}
	page := apitypes.EventPage{Events: evs, Next: after, Status: run.Status, More: len(evs) == limit}
	if len(evs) > 0 {
		page.Next = evs[len(evs)-1].Seq
	}
	if page.Events == nil {
		page.Events = []runbook.Event{}
	}
	server.WriteJSON(w, http.StatusOK, page)
	return nil
}

// streamEvents sends the run's events as server-sent events (id = seq, so
// a reconnecting EventSource resumes with Last-Event-ID), then an "end"
// event once the run is finished and everything was sent.
func (h *handlers) streamEvents(w http.ResponseWriter, r *http.Request) error {
	after, err := afterParam(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	st := h.s.Store()
	run, err := st.GetRun(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	es := h.s.StreamRun(w, r, run)
	defer es.Close()
	for {
		evs, err := st.Events(ctx, run.ID, after, 500)
		if err != nil {
			fmt.Fprintf(w, "event: error\ndata: %q\n\n", err.Error())
			es.Flush()
			return nil
		}
		for _, ev := range evs {
			b, _ := json.Marshal(ev)
			fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", ev.Seq, ev.Type, b)
			after = ev.Seq
		}
		if len(evs) > 0 && !es.Flush() {
			return nil
		}
		if len(evs) == 500 {
			continue
		}
		if cur, err := st.GetRun(ctx, run.ID); err == nil && cur.Status.Finished() {
			if last, err := st.LastSeq(ctx, run.ID); err == nil && last <= after {
				fmt.Fprintf(w, "event: end\ndata: {\"status\":%q}\n\n", cur.Status)
				es.Flush()
				return nil
			}
			continue
		}
		if !es.Wait(ctx.Done()) {
			return nil
		}
	}
}

func (h *handlers) cancelRun(w http.ResponseWriter, r *http.Request) error {
	var req apitypes.ReasonRequest
	if err := server.DecodeJSON(r, &req); err != nil {
		return err
	}
	run, err := h.s.Store().GetRun(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := h.s.CancelRun(r, run, principal(r).Name, req.Reason); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

func (h *handlers) resumeRun(w http.ResponseWriter, r *http.Request) error {
	var req apitypes.ResumeRequest
	if err := server.DecodeJSON(r, &req); err != nil {
		return err
	}
	switch req.RetryInterrupted {
	case "", runbook.ChoiceRetry, runbook.ChoiceSkip, runbook.ChoiceAbort, runbook.ChoiceRollback:
	default:
		return server.BadRequest("retry_interrupted must be retry, skip, abort or rollback, not %q", req.RetryInterrupted)
	}
	run, err := h.s.Store().GetRun(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := h.s.ResumeRun(r.Context(), run, principal(r).Name, req.RetryInterrupted); err != nil {
		return err
	}
	if err := h.s.AuditRequest(r, "run.resume", "run/"+run.ID, map[string]string{"retry_interrupted": req.RetryInterrupted}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

func (h *handlers) decideGate(w http.ResponseWriter, r *http.Request) error {
	var req apitypes.GateRequest
	if err := server.DecodeJSON(r, &req); err != nil {
		return err
	}
	run, err := h.s.Store().GetRun(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	ev, err := h.s.DecideGate(r, principal(r), run, req.Decision, req.Reason)
	if err != nil {
		return err
	}
	server.WriteJSON(w, http.StatusOK, ev)
	return nil
}

func (h *handlers) answer(w http.ResponseWriter, r *http.Request) error {
	var req apitypes.AnswerRequest
	if err := server.DecodeJSON(r, &req); err != nil {
		return err
	}
	run, err := h.s.Store().GetRun(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	ev, err := h.s.Answer(r, principal(r), run, req.Kind, req.Choice, req.Reason)
	if err != nil {
		return err
	}
	server.WriteJSON(w, http.StatusOK, ev)
	return nil
}

func (h *handlers) noteRun(w http.ResponseWriter, r *http.Request) error {
	var req apitypes.NoteRequest
	if err := server.DecodeJSON(r, &req); err != nil {
		return err
	}
	if strings.TrimSpace(req.Text) == "" {
		return server.BadRequest("a note needs some text")
	}
	ev, err := h.s.Engine().Note(r.Context(), r.PathValue("id"), principal(r).Name, req.Text)
	if err != nil {
		return err
	}
	if err := h.s.AuditRequest(r, "run.note", "run/"+ev.RunID, nil); err != nil {
		return err
	}
	server.WriteJSON(w, http.StatusCreated, ev)
	return nil
}

func (h *handlers) reportRun(w http.ResponseWriter, r *http.Request) error {
	var req apitypes.ReportRequest
	if err := server.DecodeJSON(r, &req); err != nil {
		return err
	}
	run, err := h.s.Runs().Report(r.Context(), principal(r), req, h.s.RemoteAddr(r))
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/runs/"+run.ID)
	server.WriteJSON(w, http.StatusCreated, run)
	return nil
}

func (h *handlers) reportEvents(w http.ResponseWriter, r *http.Request) error {
	var req apitypes.ReportEventsRequest
	if err := server.DecodeJSON(r, &req); err != nil {
		return err
	}
	run, err := h.s.Store().GetRun(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	res, err := h.s.Runs().AppendReported(r.Context(), principal(r), run, req.Events)
	if err != nil {
		return err
	}
	server.WriteJSON(w, http.StatusOK, res)
	return nil
}
