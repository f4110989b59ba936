package ui

import (
	"bytes"
	"html/template"
	"net/http"

	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/report"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/server"
)

func (h *handlers) registerReports() {
	h.s.Handle("GET /runs/{id}/checklist", auth.Need(auth.RunbookView, h.scopeRun), "UI: the run's checklist filled from its log, printable", h.checklist)
	h.s.Handle("GET /runs/{id}/postmortem", auth.Need(auth.RunbookView, h.scopeRun), "UI: the run's postmortem pre-filled from its log, printable", h.postmortem)
}

func (h *handlers) checklist(w http.ResponseWriter, r *http.Request) error {
	v, err := h.loadRun(r.Context(), principal(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	return h.render(w, http.StatusOK, "checklist", h.newPage(r, "checklist", "overview", v))
}

// postmortem shows the postmortem `opsbook postmortem` writes for the run:
// the same document (internal/report), rendered and sanitised, so the page
// and the file never disagree.
func (h *handlers) postmortem(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	run, err := h.s.Store().GetRun(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	var evs []runbook.Event
	for ev, err := range h.s.Store().StateEvents(ctx, run.ID, 0) {
		if err != nil {
			return err
		}
		evs = append(evs, ev)
	}
	doc := h.snapshotDoc(ctx, run)
	if doc == nil {
		doc = &runbook.Document{Title: run.Title}
	}
	pg := h.newPage(r, "postmortem", "overview", nil)
	var md bytes.Buffer
	in := report.Input{Task: run.Task, Lang: pg.Lang, Runbook: doc, Run: &run, Events: evs}
	if err := report.WritePostmortem(&md, in); err != nil {
		return server.BadRequest("%v", err)
	}
	pg.Data = struct {
		Run  runbook.Run
		HTML template.HTML
	}{run, template.HTML(server.RenderMarkdown(md.Bytes()))}
	return h.render(w, http.StatusOK, "postmortem", pg)
}
