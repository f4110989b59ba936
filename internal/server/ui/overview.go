package ui

import (
	"context"
	"fmt"
	"hash/fnv"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/store"
)

func (h *handlers) registerOverview() {
	h.s.Handle("GET /{$}", auth.NeedSomewhere(auth.RunbookView), "UI: overview matrix of runbooks × environments, and what waits for me", h.overview)
	h.s.Handle("GET /overview/live", auth.NeedSomewhere(auth.RunbookView), "UI: the overview's cells and 'waiting for me' as server-sent events, as the caller may view them", h.overviewLive)
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
	Since        int64  // Unix ms of the start of an unfinished run, for the page to tick its duration
	Running      string // how long the unfinished run has run
	Watching     string // time left of the watch after the run, if one runs
}

// ID is the cell's element id, the same on the page and in the stream.
func (c overviewCell) ID() string {
	f := fnv.New64a()
	f.Write([]byte(c.Runbook + "\x00" + c.Env))
	return fmt.Sprintf("cell-%016x", f.Sum64())
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
	p := principal(r)
	d, err := h.overviewOf(r.Context(), p, r.URL.Query().Get("project"), r.URL.Query().Get("tag"))
	if err != nil {
		return err
	}
	return h.render(w, http.StatusOK, "overview", h.newPage(r, "nav_overview", "overview", d))
}

// overviewOf is the overview as p may view it: the matrix of the
// runbooks of project and tag ("" for all) and what waits for p.
func (h *handlers) overviewOf(ctx context.Context, p *auth.Principal, project, tag string) (overviewData, error) {
	cat := h.s.Catalog()
	now := h.s.Now()
	d := overviewData{Project: project, Tag: tag, Envs: cat.Workspace().EnvironmentNames()}
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
					return d, err
				}
				if len(runs) == 1 {
					c.Run = &runs[0]
					c.Age = age(now, runs[0].CreatedAt)
					if !c.Run.Status.Finished() && !c.Run.StartedAt.IsZero() {
						c.Since, c.Running = c.Run.StartedAt.UnixMilli(), formatDuration(now.Sub(c.Run.StartedAt))
					}
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
	if d.Gates, err = h.gatesFor(ctx, p, now); err != nil {
		return d, err
	}
	d.Reviews = h.reviewsFor(p, now)
	return d, nil
}

// overviewLive streams the overview's changes as server-sent events:
// "cells" carries the matrix cells that changed since the last batch
// (each replaces the cell of its id, whatever the page's filters show),
// "waiting" the "waiting for me" region when it changed. Each batch is
// computed for the caller as authenticated again (EventStream.Principal),
// with the same rules as the page: a cell the caller may not view is
// sent as the page shows it, without its run.
func (h *handlers) overviewLive(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	es := h.s.StreamAll(w, r, overviewRefresh)
	defer es.Close()
	pg := h.newPage(r, "nav_overview", "overview", nil)
	// The first batch sends everything: the page may have been rendered
	// before a change the stream did not see.
	sent := map[string]string{} // cell id → what the page shows now
	lastWaiting := ""
	var last time.Time
	for {
		// A run writing thousands of lines a second wakes the stream as
		// often; the overview changes far less: one batch per
		// overviewMinGap at most, whatever the news.
		if wait := time.Until(last.Add(overviewMinGap)); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
		}
		last = time.Now()
		pg.User = es.Principal()
		d, err := h.overviewOf(ctx, pg.User, "", "")
		if err != nil {
			return nil // the client reconnects
		}
		var cells strings.Builder
		for _, row := range d.Rows {
			for _, c := range row.Cells {
				s, err := h.fragment("overview", "cell", pg.With(c))
				if err != nil {
					return err
				}
				if sent[c.ID()] != s {
					cells.WriteString(strings.Replace(s, "<td ", `<td hx-swap-oob="true" `, 1))
					sent[c.ID()] = s
				}
			}
		}
		if cells.Len() > 0 {
			sse(w, "cells", 0, cells.String())
		}
		pg.Data = d
		if s, err := h.fragment("overview", "waiting", pg); err == nil && s != lastWaiting {
			sse(w, "waiting", 0, s)
			lastWaiting = s
		}
		if !es.Flush() || !es.Wait(ctx.Done()) {
			return nil
		}
	}
}

// overviewRefresh is how often the overview's stream looks again without
// news: runs written by another process, ages that grow.
const overviewRefresh = 5 * time.Second

// overviewMinGap is the least time between two batches of the overview's
// stream.
const overviewMinGap = 500 * time.Millisecond

// gatesFor lists the runs waiting for p: at a gate p may decide, or at a
// manual step or a guided-failure question p may answer (RunbookRun).
func (h *handlers) gatesFor(ctx context.Context, p *auth.Principal, now time.Time) ([]waitingGate, error) {
	if !p.CanSomewhere(auth.RunbookApprove) && !p.CanSomewhere(auth.RunbookRun) {
		return nil, nil
	}
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
