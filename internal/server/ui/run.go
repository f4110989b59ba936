package ui

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/markdown"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/server"
)

func (h *handlers) registerRun() {
	h.s.Handle("GET /runs/{id}", auth.Need(auth.RunbookView, h.scopeRun), "UI: a run — step timeline, live log, gates and questions", h.runPage)
	h.s.Handle("POST /runs/{id}/gate", auth.Need(auth.RunbookApprove, h.scopeRun), "UI: approve or reject the gate a run waits at", h.decideGate)
	h.s.Handle("POST /runs/{id}/answer", auth.Need(auth.RunbookRun, h.scopeRun), "UI: confirm a manual step or answer a guided-failure question", h.answer)
	h.s.Handle("POST /runs/{id}/cancel", auth.Need(auth.RunbookRun, h.scopeRun), "UI: cancel a run", h.cancel)
}

// runView is a run as its page shows it, derived from the event log.
type runView struct {
	Run        runbook.Run
	State      *runbook.RunState
	Steps      []stepView // every step of the document, run or not, then rollback steps
	Elapsed    string
	Finished   bool
	CanRun     bool
	CanApprove bool
	// ReportedBy is who executes the run in their own process (opsbook
	// run --local); the server shows it and offers no decisions on it.
	ReportedBy string
	// ReportedQuiet is how long an unfinished reported run has sent
	// nothing, when over a minute: its process may have died on a laptop.
	ReportedQuiet string
	PanelError    string
	Stderr        []string // the last stderr lines of the failed step a question is about
	Since         int64    // Unix ms the run started, while it runs (the page ticks from it)
	FromSteps     []string // the document's steps, to run again from
	WatchLeft     string   // the watch after a successful run: how long it still runs
	// RollbackRun is the Run form of the runbook's rollback document,
	// filled with this run's parameters (run page only, not the stream).
	RollbackRun *runbookData
}

type stepView struct {
	ID, Title, Estimate, Duration, Started, Error string
	Status                                        runbook.StepStatus
	Attempts                                      int
	Checks                                        []runbook.Check
	Decisions                                     []runbook.Decision
	Since                                         int64      // Unix ms a running step started, for the page to tick
	Over                                          bool       // took over 1.5× its estimate
	Hosts                                         []hostView // a fan-out step's hosts, in inventory order
}

// hostView is one host of a fan-out step.
type hostView struct {
	Host, Duration, Error string
	Status                runbook.StepStatus
	Batch, Attempts       int
	NotStarted            bool
}

// loadRun reads a run, replays its log and lays out its steps.
func (h *handlers) loadRun(ctx context.Context, p *auth.Principal, id string) (*runView, error) {
	run, err := h.s.Store().GetRun(ctx, id)
	if err != nil {
		return nil, err
	}
	state, err := h.s.Engine().State(ctx, run.ID)
	if err != nil {
		return nil, err
	}
	return h.markReported(ctx, h.viewRun(p, run, state, h.snapshotSteps(ctx, run))), nil
}

// markReported notes a run executing in someone's own process: its gates,
// questions, cancellation and resumption are theirs, not the server's.
func (h *handlers) markReported(ctx context.Context, v *runView) *runView {
	if rr, err := h.s.Store().GetReportedRun(ctx, v.Run.ID); err == nil {
		v.ReportedBy, v.CanApprove = rr.Reporter, false
		if quiet := h.s.Now().Sub(v.State.LastEvent); !v.Finished && !v.State.LastEvent.IsZero() && quiet > time.Minute {
			v.ReportedQuiet = formatDuration(quiet.Round(time.Minute))
		}
	}
	return v
}

// snapshotSteps are the steps of the document the run froze, parsed from
// its snapshot once per page or live stream; none when it cannot be read.
func (h *handlers) snapshotSteps(ctx context.Context, run runbook.Run) []runbook.Step {
	if doc := h.snapshotDoc(ctx, run); doc != nil {
		return doc.Steps
	}
	return nil
}

// snapshotDoc is the runbook document the run froze; nil when its
// snapshot cannot be read.
func (h *handlers) snapshotDoc(ctx context.Context, run runbook.Run) *runbook.Document {
	sn, err := h.s.Store().GetSnapshot(ctx, run.Snapshot)
	if err != nil {
		return nil
	}
	doc, _ := markdown.Parse(sn.Runbook, sn.Source)
	return doc
}

// viewRun lays out run's steps: docSteps (see snapshotSteps) in document
// order with their state, then steps only the log knows, then rollback.
func (h *handlers) viewRun(p *auth.Principal, run runbook.Run, state *runbook.RunState, docSteps []runbook.Step) *runView {
	now := h.s.Now()
	v := &runView{Run: run, State: state, Finished: state.Status.Finished() || run.Status.Finished()}
	if v.Finished && !state.Status.Finished() {
		cp := *state
		cp.Status = run.Status // the index knows before a partial log does
		v.State = &cp
	}
	scope := auth.Scope{Project: h.s.Catalog().ProjectOf(run.Runbook), Environment: run.Environment}
	v.CanRun = p.Can(auth.RunbookRun, scope)
	if w := state.Waiting; w != nil && w.Kind == runbook.WaitKindGate && p.Can(auth.RunbookApprove, scope) {
		v.CanApprove = h.s.MayDecideGate(p, run, w)
	}
	if !state.StartedAt.IsZero() {
		end := state.FinishedAt
		if end.IsZero() {
			end = now
		}
		v.Elapsed = formatDuration(end.Sub(state.StartedAt))
		if !v.Finished {
			v.Since = state.StartedAt.UnixMilli()
		}
	}
	if left := state.Watch.Left(now); left > 0 {
		if left >= time.Minute {
			left = left.Round(time.Minute)
		}
		v.WatchLeft = formatDuration(left)
	}
	seen := map[string]bool{}
	add := func(ds *runbook.Step, st *runbook.StepState) {
		sv := stepView{Status: runbook.StepPending}
		if ds != nil {
			sv.ID, sv.Title = ds.ID, ds.Title
			sv.Estimate = formatDuration(ds.Estimate)
		}
		if st != nil {
			sv.ID = st.ID
			sv.Status, sv.Attempts, sv.Error = st.Status, st.Attempts, st.Error
			sv.Checks, sv.Decisions = st.Checks, st.Decisions
			if st.Status == runbook.StepSkipped && st.SkipReason != "" {
				sv.Error = st.SkipReason
			}
			if d := st.Duration(now); d > 0 {
				sv.Duration = formatDuration(d)
				sv.Over = ds != nil && ds.Estimate > 0 && d > ds.Estimate*3/2
			}
			if !st.StartedAt.IsZero() {
				sv.Started = st.StartedAt.Local().Format("15:04:05")
				if st.Status == runbook.StepRunning && !v.Finished {
					sv.Since = st.StartedAt.UnixMilli()
				}
			}
			if st.Fanout || len(st.Hosts) > 1 {
				for _, hs := range st.Hosts {
					hv := hostView{Host: hs.Host, Status: hs.Status, Batch: hs.Batch, Attempts: hs.Attempts, Error: hs.Error, NotStarted: hs.NotStarted()}
					if !hs.StartedAt.IsZero() {
						end := hs.FinishedAt
						if end.IsZero() {
							end = now
						}
						hv.Duration = formatDuration(end.Sub(hs.StartedAt))
					}
					sv.Hosts = append(sv.Hosts, hv)
				}
			}
		}
		v.Steps = append(v.Steps, sv)
	}
	for i := range docSteps {
		ds := &docSteps[i]
		v.FromSteps = append(v.FromSteps, ds.ID)
		seen[ds.ID] = true
		add(ds, state.Step(ds.ID))
	}
	for _, st := range state.Steps {
		if !seen[st.ID] {
			add(nil, st)
		}
	}
	if state.Rollback != nil {
		for _, st := range state.Rollback.Steps {
			sv := len(v.Steps)
			add(nil, st)
			v.Steps[sv].ID = "rollback:" + st.ID
		}
	}
	return v
}

// liveView lays out the run from its log index, which has read the log
// already (a million-line log is not read again for each page and
// stream), and detaches what the page shows from the index's state; it
// also returns the log's size and last sequence number.
func (h *handlers) liveView(ctx context.Context, p *auth.Principal, run runbook.Run, docSteps []runbook.Step) (*runView, int, int64, error) {
	x, err := h.logIndex(ctx, run.ID)
	if err != nil {
		return nil, 0, 0, err
	}
	defer x.mu.Unlock()
	v := h.markReported(ctx, h.viewRun(p, run, x.state, docSteps))
	cp := *v.State
	cp.Steps, cp.Decisions, cp.Anomalies, cp.Breaches, cp.Outputs = nil, nil, nil, nil, nil
	if w := cp.Waiting; w != nil {
		wc := *w
		wc.Approvals, wc.Options, wc.Roles = slices.Clone(w.Approvals), slices.Clone(w.Options), slices.Clone(w.Roles)
		cp.Waiting = &wc
		if w.Kind == runbook.WaitKindAsk && w.Step != "" {
			v.Stderr = slices.Clone(x.stderr[w.Phase+"/"+w.Step])
		}
	}
	if rb := cp.Rollback; rb != nil {
		rc := *rb
		rc.Steps = nil
		cp.Rollback = &rc
	}
	v.State = &cp
	return v, x.total(), x.seq, nil
}

// runViewFor is the run page's view of the run named by the request.
func (h *handlers) runViewFor(r *http.Request) (*runView, error) {
	ctx := r.Context()
	run, err := h.s.Store().GetRun(ctx, r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	v, _, _, err := h.liveView(ctx, principal(r), run, h.snapshotSteps(ctx, run))
	return v, err
}

func (h *handlers) runPage(w http.ResponseWriter, r *http.Request) error {
	v, err := h.runViewFor(r)
	if err != nil {
		return err
	}
	if e, ok := h.s.Catalog().Get(v.Run.Runbook); ok {
		v.RollbackRun = h.rollbackForm(principal(r), e, v.Run.Environment, v.Run.Params)
	}
	return h.render(w, http.StatusOK, "run", h.newPage(r, v.Run.Title, "overview", v))
}

// panel answers an htmx action with the run's action panel as it is now.
func (h *handlers) panel(w http.ResponseWriter, r *http.Request, status int, actionErr error) error {
	v, err := h.runViewFor(r)
	if err != nil {
		return err
	}
	if actionErr != nil {
		v.PanelError = actionErr.Error()
	}
	p := h.newPage(r, v.Run.Title, "overview", v)
	if !isHTMX(r) {
		if actionErr != nil {
			return actionErr
		}
		http.Redirect(w, r, "/runs/"+v.Run.ID, http.StatusSeeOther)
		return nil
	}
	return h.renderTemplate(w, status, "run", "panel", p)
}

// refused turns a decision the server refused (conflict, bad input) into
// a message on the panel; permission errors keep their status.
func (h *handlers) refused(w http.ResponseWriter, r *http.Request, err error) error {
	if e, ok := err.(*server.Error); ok && e.Status != http.StatusForbidden {
		return h.panel(w, r, e.Status, err)
	}
	return err
}

func (h *handlers) decideGate(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	run, err := h.s.Store().GetRun(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	decision := r.PostFormValue("decision")
	if decision != runbook.DecisionGo && decision != runbook.DecisionNoGo {
		return server.BadRequest("decision must be go or no-go, not %q", decision)
	}
	reason := strings.TrimSpace(r.PostFormValue("reason"))
	if _, err := h.s.DecideGate(r, principal(r), run, decision, reason); err != nil {
		return h.refused(w, r, err)
	}
	return h.panel(w, r, http.StatusOK, nil)
}

func (h *handlers) answer(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	run, err := h.s.Store().GetRun(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	kind, choice, reason := r.PostFormValue("kind"), r.PostFormValue("choice"), strings.TrimSpace(r.PostFormValue("reason"))
	if _, err := h.s.Answer(r, principal(r), run, kind, choice, reason); err != nil {
		return h.refused(w, r, err)
	}
	return h.panel(w, r, http.StatusOK, nil)
}

func (h *handlers) cancel(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	run, err := h.s.Store().GetRun(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	reason := strings.TrimSpace(r.PostFormValue("reason"))
	if err := h.s.CancelRun(r, run, principal(r).Name, reason); err != nil {
		return h.refused(w, r, err)
	}
	return h.panel(w, r, http.StatusOK, nil)
}
