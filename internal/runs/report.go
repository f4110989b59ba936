package runs

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sync"

	"github.com/opsbook/opsbook/internal/apitypes"
	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/markdown"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/store"
)

// A reported run executes in someone's own process (`opsbook run
// --local`) and the server keeps its record: the overview, the runs list,
// the run page, the audit log and the postmortem show it like any other.
// The server never executes, resumes, takes over, cancels or decides it —
// the reporter's process does all that — and only the user who reported
// it may append to its log.

// MaxReportBatch is the most events one POST /api/v1/runs/{id}/events
// carries.
const MaxReportBatch = 1000

var runIDPattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^r-[0-9A-HJKMNP-TV-Z]{26}$`) })

// Report registers a run executing in p's own process. The caller's
// RunbookRun in the runbook's project and the environment has been checked;
// here the documents are parsed, the environment's rules applied (a
// protected environment's gates are decided on the server only, so a
// reported run there may have none, exactly as the CLI refuses it), secret
// parameters dropped, and the run recorded as started by p.
func (s *Service) Report(ctx context.Context, p *auth.Principal, req apitypes.ReportRequest, remote string) (runbook.Run, error) {
	if !runIDPattern().MatchString(req.ID) {
		return runbook.Run{}, BadRequest("id %q is not a run id (r- and 26 characters of Crockford base32, as `opsbook runs` shows them)", req.ID)
	}
	env, err := s.catalog.Workspace().Environment(req.Environment)
	if err != nil {
		return runbook.Run{}, BadRequest("%v", err)
	}
	sn := store.Snapshot{Runbook: req.Runbook, Source: []byte(req.Source), RollbackPath: req.RollbackPath, CreatedBy: p.Name}
	if req.RollbackPath != "" {
		sn.RollbackSource = []byte(req.RollbackSource)
	}
	for _, c := range req.Called {
		sn.Called = append(sn.Called, store.CalledDocument{Ref: c.Ref, Path: c.Path, Source: []byte(c.Source)})
	}
	doc, diags := markdown.Parse(req.Runbook, sn.Source)
	if doc == nil || runbook.HasErrors(diags) {
		first := "it does not parse"
		if len(diags) > 0 {
			first = diags[0].String()
		}
		return runbook.Run{}, BadRequest("runbook %s has errors: %s", req.Runbook, first)
	}
	docs, err := parseSnapshot(sn)
	if err != nil {
		return runbook.Run{}, BadRequest("%v", err)
	}
	if allowed := docs.Runbook.Front.Environments; len(allowed) > 0 && !slices.Contains(allowed, env.Name) {
		return runbook.Run{}, BadRequest("runbook %s may run in %v only, not in %s (front matter \"environments\")", req.Runbook, allowed, env.Name)
	}
	if env.Protected {
		all := append([]*runbook.Document{docs.Runbook, docs.Rollback}, docs.Order...)
		for _, d := range all {
			if d == nil {
				continue
			}
			for _, st := range d.Steps {
				if st.Gate != nil {
					return runbook.Run{}, Errorf(http.StatusForbidden, "protected_gate",
						"%s:%d: environment %s is protected and step %s is a gate: its decisions come from authenticated people on the server, so run it on the server (opsbook run --server), not --local",
						d.Path, st.Pos.Line, env.Name, st.ID)
				}
			}
		}
	}
	params := map[string]string{}
	for k, v := range req.Params {
		params[k] = v
	}
	for _, d := range docs.Runbook.Front.Params {
		if d.SecretParam() {
			delete(params, d.Name) // never stored, whatever the reporter sent
		}
	}
	sn.Hash = docs.content()
	if err := s.store.PutSnapshot(ctx, sn); err != nil {
		return runbook.Run{}, err
	}
	run := runbook.Run{ID: req.ID, Runbook: req.Runbook, Task: req.Task, Title: docs.Runbook.Title, Environment: env.Name,
		Snapshot: sn.Hash, Params: params, CreatedBy: p.Name, CreatedAt: req.CreatedAt, Emergency: req.Emergency}
	created, err := s.store.CreateReportedRun(ctx, &run, p.Name)
	if errors.Is(err, store.ErrConflict) {
		return runbook.Run{}, Errorf(http.StatusConflict, "exists", "run %s exists on the server already and is not yours to report", req.ID)
	}
	if err != nil {
		return runbook.Run{}, err
	}
	if created {
		if err := s.cfg.Audit(ctx, p.Name, remote, "run.report", "run/"+run.ID, map[string]string{
			"runbook": run.Runbook, "environment": run.Environment, "snapshot": run.Snapshot,
			"reporter_snapshot": req.Snapshot, "executes": "locally"}); err != nil {
			return runbook.Run{}, err
		}
		s.hub.notify(run.ID)
	}
	return run, nil
}

// AppendReported appends a batch of a reported run's events, each with
// the reporter's seq; what the server has already is skipped. The
// events' actors become p: what a local process records is its user's
// word, and the server knows that user only as the one authenticated (a
// name the process claimed is kept in Data["claimed_actor"]).
func (s *Service) AppendReported(ctx context.Context, p *auth.Principal, run runbook.Run, evs []runbook.Event) (apitypes.ReportEventsResponse, error) {
	if len(evs) > MaxReportBatch {
		return apitypes.ReportEventsResponse{}, BadRequest("a batch holds at most %d events, not %d", MaxReportBatch, len(evs))
	}
	if _, err := s.reportedBy(ctx, p, run); err != nil {
		return apitypes.ReportEventsResponse{}, err
	}
	for i := range evs {
		ev := &evs[i]
		if ev.Seq <= 0 {
			return apitypes.ReportEventsResponse{}, BadRequest("event %d has no seq: every reported event carries the reporter's sequence number", i+1)
		}
		data := map[string]string{}
		for k, v := range ev.Data {
			data[k] = v
		}
		if ev.Actor != "" && ev.Actor != p.Name {
			data["claimed_actor"] = ev.Actor
			ev.Actor = p.Name
		}
		if ev.Type == runbook.EventRunStarted {
			if u := data["user"]; u != "" && u != p.Name {
				data["claimed_actor"] = u
			}
			data["user"] = p.Name
		}
		if len(data) > 0 {
			ev.Data = data
		}
	}
	acked, out, err := s.store.AppendReportedEvents(ctx, run.ID, p.Name, evs)
	var gap *store.SeqGapError
	switch {
	case errors.As(err, &gap):
		return apitypes.ReportEventsResponse{}, Errorf(http.StatusConflict, "seq_gap", "%v", gap)
	case errors.Is(err, store.ErrNotReporter):
		return apitypes.ReportEventsResponse{}, fmt.Errorf("%w: run %s was reported by someone else", auth.ErrForbidden, run.ID)
	case errors.Is(err, store.ErrInvalid):
		return apitypes.ReportEventsResponse{}, BadRequest("%v", err)
	case err != nil:
		return apitypes.ReportEventsResponse{}, err
	}
	if len(out) == 0 {
		rr, err := s.store.GetReportedRun(ctx, run.ID)
		if err != nil {
			return apitypes.ReportEventsResponse{}, err
		}
		acked = rr.AckedSeq
	} else {
		s.hub.notify(run.ID)
	}
	return apitypes.ReportEventsResponse{Acked: acked, Appended: len(out)}, nil
}

// reportedBy checks that run is a reported run and that p reported it.
func (s *Service) reportedBy(ctx context.Context, p *auth.Principal, run runbook.Run) (store.ReportedRun, error) {
	rr, err := s.store.GetReportedRun(ctx, run.ID)
	if errors.Is(err, store.ErrNotFound) {
		return rr, Errorf(http.StatusConflict, "not_reported", "run %s executes on the server; only runs reported with POST /api/v1/runs/reported take events from outside", run.ID)
	}
	if err != nil {
		return rr, err
	}
	if rr.Reporter != p.Name {
		return rr, fmt.Errorf("%w: run %s was reported by someone else; only its reporter appends to it", auth.ErrForbidden, run.ID)
	}
	return rr, nil
}

// refuseReported refuses to act on a reported run what only the process
// executing it can do (cancel, resume, decide).
func (s *Service) refuseReported(ctx context.Context, run runbook.Run, what string) error {
	rr, err := s.store.GetReportedRun(ctx, run.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return Errorf(http.StatusConflict, "reported", "run %s executes in %s's own process (opsbook run --local), not on the server: %s it there", run.ID, rr.Reporter, what)
}
