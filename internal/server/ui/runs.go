package ui

import (
	"net/http"
	"net/url"
	"time"

	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/server"
	"github.com/opsbook/opsbook/internal/store"
)

func (h *handlers) registerRuns() {
	h.s.Handle("GET /runs", auth.NeedSomewhere(auth.RunbookView), "UI: every run, newest first, filtered by project, runbook, environment, status, who and date, a page at a time", h.runsPage)
}

// runsPageSize is how many runs a page of the runs list shows.
const runsPageSize = 50

type runsData struct {
	Projects, Envs []string
	Runbooks       []*server.Entry
	Statuses       []runbook.RunStatus
	F              runsFilter
	Runs           []runRow
	Next           string // the query of the next (older) page; "" on the last
	First          string // the query of the first page, when not on it
}

type runsFilter struct {
	Project, Runbook, Env, Status, Who, From, To string
}

type runRow struct {
	Run      runbook.Run
	Started  string
	Duration string
	Since    int64 // Unix ms of the start of a running run, for the page to tick
}

// runFilter is the store filter of a runs query, and the query's fields
// for the form; a bad date is a 400.
func (h *handlers) runFilter(q url.Values) (store.RunFilter, runsFilter, error) {
	f := runsFilter{Project: q.Get("project"), Runbook: q.Get("runbook"), Env: q.Get("environment"), Status: q.Get("status"),
		Who: q.Get("who"), From: q.Get("from"), To: q.Get("to")}
	sf := store.RunFilter{Runbook: f.Runbook, Environment: f.Env, CreatedBy: f.Who, Before: q.Get("before")}
	if f.Status != "" {
		sf.Status = []runbook.RunStatus{runbook.RunStatus(f.Status)}
	}
	if f.Project != "" {
		for _, e := range h.s.Catalog().List() {
			if e.Project == f.Project {
				sf.Runbooks = append(sf.Runbooks, e.Path)
			}
		}
		if len(sf.Runbooks) == 0 {
			sf.Runbooks = []string{"\x00none"} // a project without runbooks has no runs
		}
	}
	day := func(name, v string) (time.Time, error) {
		if v == "" {
			return time.Time{}, nil
		}
		t, err := time.ParseInLocation("2006-01-02", v, time.Local)
		if err != nil {
			return t, server.BadRequest("%s must be a date like 2026-12-31, not %q", name, v)
		}
		return t, nil
	}
	var err error
	if sf.Since, err = day("from", f.From); err != nil {
		return sf, f, err
	}
	if sf.Until, err = day("to", f.To); err != nil {
		return sf, f, err
	}
	if !sf.Until.IsZero() {
		sf.Until = sf.Until.AddDate(0, 0, 1) // "to" includes its day
	}
	return sf, f, nil
}

// visibleRuns reads runs of sf newest first, skipping those p may not
// view, until limit are found; next is the cursor of the following page.
func (h *handlers) visibleRuns(r *http.Request, p *auth.Principal, sf store.RunFilter, limit int) (runs []runbook.Run, next string, err error) {
	sf.Limit = limit + 1
	for {
		page, err := h.s.Store().ListRuns(r.Context(), sf)
		if err != nil {
			return nil, "", err
		}
		for _, run := range page {
			if !p.Can(auth.RunbookView, auth.Scope{Project: h.s.Catalog().ProjectOf(run.Runbook), Environment: run.Environment}) {
				continue
			}
			if len(runs) == limit {
				return runs, runs[len(runs)-1].ID, nil
			}
			runs = append(runs, run)
		}
		if len(page) < sf.Limit {
			return runs, "", nil
		}
		sf.Before = page[len(page)-1].ID
	}
}

func (h *handlers) runRows(runs []runbook.Run) []runRow {
	now := h.s.Now()
	out := make([]runRow, 0, len(runs))
	for _, run := range runs {
		row := runRow{Run: run, Started: age(now, run.CreatedAt)}
		switch {
		case !run.StartedAt.IsZero() && !run.FinishedAt.IsZero():
			row.Duration = formatDuration(run.FinishedAt.Sub(run.StartedAt))
		case !run.StartedAt.IsZero():
			row.Duration = formatDuration(now.Sub(run.StartedAt))
			row.Since = run.StartedAt.UnixMilli()
		}
		out = append(out, row)
	}
	return out
}

func (h *handlers) runsPage(w http.ResponseWriter, r *http.Request) error {
	p := principal(r)
	q := r.URL.Query()
	sf, f, err := h.runFilter(q)
	if err != nil {
		return err
	}
	if sf.Before != "" {
		if _, err := h.s.Store().GetRun(r.Context(), sf.Before); err != nil {
			return server.BadRequest("before must be the id of a run (the last of the previous page), not %q", sf.Before)
		}
	}
	cat := h.s.Catalog()
	d := runsData{F: f, Envs: cat.Workspace().EnvironmentNames(),
		Statuses: []runbook.RunStatus{runbook.RunPending, runbook.RunRunning, runbook.RunWaiting, runbook.RunSucceeded,
			runbook.RunFailed, runbook.RunRolledBack, runbook.RunCancelled, runbook.RunInterrupted}}
	for _, name := range cat.Projects() {
		if p.Can(auth.RunbookView, auth.Scope{Project: name}) {
			d.Projects = append(d.Projects, name)
		}
	}
	for _, e := range cat.List() {
		if p.Can(auth.RunbookView, auth.Scope{Project: e.Project}) {
			d.Runbooks = append(d.Runbooks, e)
		}
	}
	runs, next, err := h.visibleRuns(r, p, sf, runsPageSize)
	if err != nil {
		return err
	}
	d.Runs = h.runRows(runs)
	if next != "" {
		nq := url.Values{}
		for k, v := range q {
			nq[k] = v
		}
		nq.Set("before", next)
		d.Next = "/runs?" + nq.Encode()
	}
	if sf.Before != "" {
		fq := url.Values{}
		for k, v := range q {
			fq[k] = v
		}
		fq.Del("before")
		d.First = "/runs?" + fq.Encode()
	}
	return h.render(w, http.StatusOK, "runs", h.newPage(r, "nav_runs", "runs", d))
}
