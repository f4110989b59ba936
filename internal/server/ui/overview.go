package ui

import (
	"net/http"
	"slices"
	"sort"
	"time"

	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/store"
)

func (h *handlers) registerOverview() {
	h.s.Handle("GET /{$}", auth.NeedSomewhere(auth.RunbookView), "UI: overview matrix of runbooks × environments, and what waits for me", h.overview)
}

type overviewData struct {
	Projects, Tags, Envs []string
	Project, Tag         string
	Rows                 []overviewRow
	Gates                []waitingGate
	Reviews              []waitingReview
}

type overviewRow struct {
	Path, Title, Project string
	Tags                 []string
	Cells                []overviewCell
}

type overviewCell struct {
	Runbook, Env string
	Visible      bool // the user may view runs of this runbook here
	Run          *runbook.Run
	Age          string
	Watching     string // time left of the watch after the run, if one runs
}

type waitingGate struct {
	Run  runbook.Run
	Kind string // gate, manual or ask
	Step string
	Age  string
}

type waitingReview struct {
	Name      string
	Approvals int
}

func (h *handlers) overview(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	p := principal(r)
	cat := h.s.Catalog()
	now := h.s.Now()
	d := overviewData{Project: r.URL.Query().Get("project"), Tag: r.URL.Query().Get("tag"), Envs: cat.Workspace().EnvironmentNames()}
	for _, name := range cat.Projects() {
		if p.Can(auth.RunbookView, auth.Scope{Project: name}) {
			d.Projects = append(d.Projects, name)
		}
	}
	tags := map[string]bool{}
	for _, e := range cat.List() {
		if !p.Can(auth.RunbookView, auth.Scope{Project: e.Project}) {
			continue
		}
		for _, t := range e.Tags {
			tags[t] = true
		}
		if (d.Project != "" && e.Project != d.Project) || (d.Tag != "" && !slices.Contains(e.Tags, d.Tag)) {
			continue
		}
		row := overviewRow{Path: e.Path, Title: e.Title, Project: e.Project, Tags: e.Tags}
		for _, env := range d.Envs {
			c := overviewCell{Runbook: e.Path, Env: env, Visible: p.Can(auth.RunbookView, auth.Scope{Project: e.Project, Environment: env})}
			if c.Visible {
				runs, err := h.s.Store().ListRuns(ctx, store.RunFilter{Runbook: e.Path, Environment: env, Limit: 1})
				if err != nil {
					return err
				}
				if len(runs) == 1 {
					c.Run = &runs[0]
					c.Age = age(now, runs[0].CreatedAt)
					if c.Run.Status == runbook.RunSucceeded && e.Doc != nil && e.Doc.Front.Watch > 0 {
						if w, err := h.s.Store().GetWatch(ctx, c.Run.ID); err == nil && w.Until.After(now) {
							c.Watching = formatDuration(w.Until.Sub(now).Round(time.Minute))
						}
					}
				}
			}
			row.Cells = append(row.Cells, c)
		}
		d.Rows = append(d.Rows, row)
	}
	for t := range tags {
		d.Tags = append(d.Tags, t)
	}
	sort.Strings(d.Tags)
	var err error
	if d.Gates, err = h.gatesFor(r, p, now); err != nil {
		return err
	}
	d.Reviews = h.reviewsFor(p, now)
	return h.render(w, http.StatusOK, "overview", h.newPage(r, "nav_overview", "overview", d))
}

// gatesFor lists the runs waiting for p: at a gate p may decide, or at a
// manual step or a guided-failure question p may answer (RunbookRun).
func (h *handlers) gatesFor(r *http.Request, p *auth.Principal, now time.Time) ([]waitingGate, error) {
	if !p.CanSomewhere(auth.RunbookApprove) && !p.CanSomewhere(auth.RunbookRun) {
		return nil, nil
	}
	ctx := r.Context()
	runs, err := h.s.Store().ListRuns(ctx, store.RunFilter{Status: []runbook.RunStatus{runbook.RunWaiting}, Limit: 200})
	if err != nil {
		return nil, err
	}
	var out []waitingGate
	for _, run := range runs {
		scope := auth.Scope{Project: h.s.Catalog().ProjectOf(run.Runbook), Environment: run.Environment}
		x, err := h.logIndex(ctx, run.ID) // the state, without reading the log again
		if err != nil {
			return nil, err
		}
		var wt runbook.Waiting
		if x.state.Waiting != nil {
			wt = *x.state.Waiting
			wt.Approvals = slices.Clone(wt.Approvals)
		}
		x.mu.Unlock()
		switch wt.Kind {
		case runbook.WaitKindGate:
			if !p.Can(auth.RunbookApprove, scope) || slices.ContainsFunc(wt.Approvals, func(d runbook.Decision) bool { return d.Actor == p.Name }) {
				continue
			}
			if !h.s.MayDecideGate(p, run, &wt) {
				continue
			}
		case runbook.WaitKindManual, runbook.WaitKindAsk:
			if !p.Can(auth.RunbookRun, scope) {
				continue
			}
		default:
			continue
		}
		out = append(out, waitingGate{Run: run, Kind: wt.Kind, Step: wt.Step, Age: age(now, wt.Since)})
	}
	return out, nil
}

// reviewsFor lists planned operations in review that p may view and has
// not approved yet.
func (h *handlers) reviewsFor(p *auth.Principal, now time.Time) []waitingReview {
	tasks, err := h.s.Catalog().Workspace().Tasks(false, now)
	if err != nil {
		return nil
	}
	var out []waitingReview
	for _, t := range tasks {
		if t.Lifecycle.State != "in review" {
			continue
		}
		if t.Lifecycle.Author == p.Name {
			continue // authors do not review their own change
		}
		out = append(out, waitingReview{Name: t.Name, Approvals: t.Lifecycle.Approvals})
	}
	return out
}
