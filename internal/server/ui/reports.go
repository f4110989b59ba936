package ui

import (
	"fmt"
	"net/http"

	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/runbook"
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

type postmortemView struct {
	*runView
	Deviations []string
	Timeline   []runbook.Event // every event but output
}

func (h *handlers) postmortem(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	v, err := h.loadRun(ctx, principal(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	pm := postmortemView{runView: v}
	for ev, err := range h.s.Store().AllEvents(ctx, v.Run.ID, 0) {
		if err != nil {
			return err
		}
		if ev.Type != runbook.EventStepOutput {
			pm.Timeline = append(pm.Timeline, ev)
		}
	}
	for _, s := range v.Steps {
		switch {
		case s.Status == runbook.StepFailed:
			pm.Deviations = append(pm.Deviations, fmt.Sprintf("%s failed: %s", s.ID, s.Error))
		case s.Status == runbook.StepSkipped:
			pm.Deviations = append(pm.Deviations, fmt.Sprintf("%s skipped: %s", s.ID, s.Error))
		case s.Over:
			pm.Deviations = append(pm.Deviations, fmt.Sprintf("%s took %s, estimated %s", s.ID, s.Duration, s.Estimate))
		}
		if s.Attempts > 1 {
			pm.Deviations = append(pm.Deviations, fmt.Sprintf("%s needed %d attempts", s.ID, s.Attempts))
		}
	}
	for _, b := range v.State.Breaches {
		pm.Deviations = append(pm.Deviations, fmt.Sprintf("guard %s breached: %s (threshold %s, %s)", b.Guard, b.Value, b.Threshold, b.Action))
	}
	if v.State.Rollback != nil {
		pm.Deviations = append(pm.Deviations, "rollback: "+v.State.Rollback.Reason)
	}
	return h.render(w, http.StatusOK, "postmortem", h.newPage(r, "postmortem", "overview", pm))
}
