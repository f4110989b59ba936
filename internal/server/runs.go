package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/engine"
	"github.com/opsbook/opsbook/internal/markdown"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/snapshot"
	"github.com/opsbook/opsbook/internal/store"
)

// runManager executes runs on a fixed pool of workers inside the server
// process. A run waiting for a gate keeps its worker; Config.Workers sizes
// the pool for that.
type runManager struct {
	s       *Server
	queue   chan job
	ctx     context.Context // runs execute under it; cancelled only when the server gives up on them
	stop    context.CancelFunc
	wg      sync.WaitGroup
	closed  atomic.Bool
	running atomic.Int64
	mu      sync.Mutex
	// dropped holds runs cancelled while still queued: the worker records
	// the cancellation instead of executing them.
	dropped map[string]string
	hub     *hub
}

type job struct {
	runID  string
	plan   *engine.Plan
	resume bool
	actor  string
	// retryInterrupted answers "re-run the interrupted step?" on resume.
	retryInterrupted string
}

func newRunManager(s *Server, workers int) *runManager {
	ctx, stop := context.WithCancel(context.Background())
	m := &runManager{s: s, queue: make(chan job, 100_000), ctx: ctx, stop: stop, dropped: map[string]string{}, hub: newHub()}
	for i := 0; i < workers; i++ {
		m.wg.Add(1)
		go m.worker()
	}
	return m
}

func (m *runManager) worker() {
	defer m.wg.Done()
	for j := range m.queue {
		m.running.Add(1)
		m.execute(j)
		m.running.Add(-1)
	}
}

func (m *runManager) execute(j job) {
	m.mu.Lock()
	reason, dropped := m.dropped[j.runID]
	delete(m.dropped, j.runID)
	m.mu.Unlock()
	if dropped {
		if err := m.recordCancel(j.runID, j.actor, reason); err != nil {
			m.s.log.Error("cancel queued run", "run", j.runID, "err", err)
		}
		return
	}
	o := engine.ExecOptions{Actor: j.actor, RetryInterrupted: j.retryInterrupted, Observe: func(ev runbook.Event) {
		if ev.Type == runbook.EventStepFinished {
			if ms, err := strconv.ParseFloat(ev.Data["duration_ms"], 64); err == nil {
				m.s.metrics.stepDuration.WithLabelValues(ev.Data["status"]).Observe(ms / 1000)
			}
		}
		m.hub.notify(ev.RunID)
	}}
	var status runbook.RunStatus
	var err error
	if j.resume {
		status, err = m.s.engine.Resume(m.ctx, j.runID, j.plan, o)
	} else {
		status, err = m.s.engine.Execute(m.ctx, j.runID, j.plan, o)
	}
	m.hub.notify(j.runID)
	if err != nil {
		m.s.log.Error("run ended with an error", "run", j.runID, "err", err)
		return
	}
	m.s.metrics.runsFinished.WithLabelValues(string(status)).Inc()
	m.s.log.Info("run ended", "run", j.runID, "status", status)
}

// submit queues a run for a worker.
func (m *runManager) submit(j job) error {
	if m.closed.Load() {
		return Errorf(http.StatusServiceUnavailable, "shutting_down", "the server is shutting down; start the run again once it is back")
	}
	select {
	case m.queue <- j:
		m.hub.notify(j.runID)
		return nil
	default:
		return Errorf(http.StatusServiceUnavailable, "queue_full", "too many runs are queued; try again later")
	}
}

func (m *runManager) queueDepth() int { return len(m.queue) }
func (m *runManager) executing() int  { return int(m.running.Load()) }

// cancel stops a run: executing here, queued here, or executing nowhere
// (pending or interrupted, e.g. left by a previous server).
func (m *runManager) cancel(ctx context.Context, run runbook.Run, actor, reason string) error {
	if m.s.engine.Cancel(run.ID, actor, reason) {
		return nil
	}
	if run.Status.Finished() {
		return Errorf(http.StatusConflict, "finished", "run %s is already %s", run.ID, run.Status)
	}
	alive, err := m.s.store.RunOwnerAlive(ctx, run.ID)
	if err != nil {
		return err
	}
	if alive {
		return Errorf(http.StatusConflict, "elsewhere", "run %s executes in another process; cancel it there (or on the server node that runs it)", run.ID)
	}
	if run.Status == runbook.RunPending {
		// Possibly queued here: let the worker record it when it gets there,
		// and record it now in case it is not queued at all. The worker's
		// later record is skipped because the run is then finished.
		m.mu.Lock()
		m.dropped[run.ID] = reason
		m.mu.Unlock()
	}
	return m.recordCancel(run.ID, actor, reason)
}

func (m *runManager) recordCancel(runID, actor, reason string) error {
	ctx := context.Background()
	run, err := m.s.store.GetRun(ctx, runID)
	if err != nil {
		return err
	}
	if run.Status.Finished() {
		return nil
	}
	lease, err := m.s.store.AcquireRun(ctx, runID, "cancel:"+store.ProcessOwner(), 30*time.Second)
	if err != nil {
		return fmt.Errorf("cancel run %s: %w", runID, err)
	}
	defer lease.Release(ctx)
	_, err = m.s.store.AppendEvents(ctx, runID,
		runbook.Event{Type: runbook.EventRunCancelled, Actor: actor, Text: reason},
		runbook.Event{Type: runbook.EventRunFinished, Data: map[string]string{"status": string(runbook.RunCancelled)}})
	if err != nil {
		return fmt.Errorf("record cancellation of run %s: %w", runID, err)
	}
	run.Status, run.FinishedAt = runbook.RunCancelled, time.Now()
	if err := m.s.store.UpdateRun(ctx, run); err != nil {
		return err
	}
	m.hub.notify(runID)
	return nil
}

// shutdown stops taking runs and waits for the running ones up to the
// deadline of ctx. Runs still executing then are abandoned: their leases
// lapse and the next start finds them interrupted and resumes them.
func (m *runManager) shutdown(ctx context.Context) error {
	if m.closed.Swap(true) {
		return nil
	}
	close(m.queue)
	done := make(chan struct{})
	go func() { m.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%d runs still executing at the shutdown deadline; they will be resumed on the next start", m.executing())
	}
}

// StartRequest is what POST /api/v1/runs asks for.
type StartRequest struct {
	Runbook     string            `json:"runbook"`
	Environment string            `json:"environment"`
	Params      map[string]string `json:"params,omitempty"`
	// Snapshot picks the content: "published" (the default for callers
	// without RunbookEdit, and the only choice for them), "current" (the
	// workspace as it is now) or a snapshot hash.
	Snapshot  string `json:"snapshot,omitempty"`
	From      string `json:"from,omitempty"`
	Emergency string `json:"emergency,omitempty"`
}

// StartRun validates and records a run, then queues it. The principal's
// RunbookRun in the runbook's project and the environment has been checked
// by the route's rule; here the snapshot choice is checked against
// RunbookEdit.
func (s *Server) StartRun(ctx context.Context, p *auth.Principal, req StartRequest, remote string) (runbook.Run, error) {
	ws := s.catalog.Workspace()
	env, err := ws.Environment(req.Environment)
	if err != nil {
		return runbook.Run{}, BadRequest("%v", err)
	}
	project := s.catalog.ProjectOf(req.Runbook)
	canEdit := p.Can(auth.RunbookEdit, auth.Scope{Project: project, Environment: env.Name})
	choice := req.Snapshot
	if choice == "" {
		choice = "published"
		if canEdit {
			choice = "current"
		}
	}
	var doc, rb *runbook.Document
	switch {
	case choice == "current":
		if !canEdit {
			return runbook.Run{}, fmt.Errorf("%w: running the workspace's current content needs RunbookEdit; without it only the published snapshot runs (omit \"snapshot\")", auth.ErrForbidden)
		}
		e, ok := s.catalog.Get(req.Runbook)
		if !ok {
			return runbook.Run{}, fmt.Errorf("runbook %s: %w; list them with GET /api/v1/runbooks", req.Runbook, store.ErrNotFound)
		}
		if runbook.HasErrors(e.Diagnostics) {
			return runbook.Run{}, BadRequest("runbook %s has errors; fix them first: %s", e.Path, e.Diagnostics[0])
		}
		doc, rb = e.Doc, e.Rollback
	default:
		hash := choice
		if choice == "published" {
			pub, err := s.store.Published(ctx, req.Runbook)
			if errors.Is(err, store.ErrNotFound) {
				return runbook.Run{}, Errorf(http.StatusConflict, "unpublished", "runbook %s has no published snapshot; someone with RunbookEdit must publish it (POST /api/v1/snapshots)", req.Runbook)
			}
			if err != nil {
				return runbook.Run{}, err
			}
			hash = pub.Hash
		} else if !canEdit {
			return runbook.Run{}, fmt.Errorf("%w: running a snapshot other than the published one needs RunbookEdit", auth.ErrForbidden)
		}
		sn, err := s.store.GetSnapshot(ctx, hash)
		if err != nil {
			return runbook.Run{}, err
		}
		if sn.Runbook != req.Runbook {
			return runbook.Run{}, BadRequest("snapshot %s is of %s, not %s", hash, sn.Runbook, req.Runbook)
		}
		if doc, rb, err = parseSnapshot(sn); err != nil {
			return runbook.Run{}, err
		}
	}
	if allowed := doc.Front.Environments; len(allowed) > 0 && !slices.Contains(allowed, env.Name) {
		return runbook.Run{}, BadRequest("runbook %s may run in %v only, not in %s (front matter \"environments\")", req.Runbook, allowed, env.Name)
	}
	plan, err := s.plan(ctx, req.Runbook, doc, rb, env.Name, req.Params)
	if err != nil {
		return runbook.Run{}, err
	}
	run, err := s.engine.Start(ctx, plan, engine.StartOptions{Actor: p.Name, From: req.From, Emergency: req.Emergency})
	if err != nil {
		return runbook.Run{}, err
	}
	if err := s.keepRunInputs(ctx, run, doc, rb, p.Name); err != nil {
		return runbook.Run{}, err
	}
	if err := s.sealRunSecrets(ctx, run.ID, doc, req.Params); err != nil {
		return runbook.Run{}, err
	}
	if err := s.Audit(ctx, p.Name, remote, "run.start", "run/"+run.ID, map[string]string{
		"runbook": run.Runbook, "environment": run.Environment, "snapshot": run.Snapshot, "content": choice}); err != nil {
		return runbook.Run{}, err
	}
	if err := s.runs.submit(job{runID: run.ID, plan: plan, actor: p.Name}); err != nil {
		return runbook.Run{}, err
	}
	return run, nil
}

// keepRunInputs stores what resuming the run needs beyond its log: the
// documents (as a snapshot under the run's snapshot hash) and its secret
// parameters, sealed.
func (s *Server) keepRunInputs(ctx context.Context, run runbook.Run, doc, rb *runbook.Document, actor string) error {
	sn := store.Snapshot{Hash: run.Snapshot, Runbook: run.Runbook, Source: doc.Source, CreatedBy: actor}
	if rb != nil {
		sn.RollbackPath, sn.RollbackSource = rb.Path, rb.Source
	}
	if err := s.store.PutSnapshot(ctx, sn); err != nil {
		return err
	}
	return nil
}

func (s *Server) sealRunSecrets(ctx context.Context, runID string, doc *runbook.Document, params map[string]string) error {
	sealed := map[string]string{}
	for _, d := range doc.Front.Params {
		v, ok := params[d.Name]
		if !ok || !d.SecretParam() {
			continue
		}
		sv, err := s.keys.Seal([]byte(v), runSecretAAD(runID, d.Name))
		if err != nil {
			return fmt.Errorf("seal secret parameter %s: %w", d.Name, err)
		}
		sealed[d.Name] = sv
	}
	if len(sealed) == 0 {
		return nil
	}
	return s.store.PutRunSecrets(ctx, runID, sealed)
}

func runSecretAAD(runID, name string) []byte { return []byte("run/" + runID + "/param/" + name) }

func parseSnapshot(sn store.Snapshot) (doc, rb *runbook.Document, err error) {
	doc, diags := markdown.Parse(sn.Runbook, sn.Source)
	if doc == nil || runbook.HasErrors(diags) {
		return nil, nil, fmt.Errorf("snapshot %s of %s does not parse any more: %v", sn.Hash, sn.Runbook, diags)
	}
	if sn.RollbackPath != "" {
		rb, _ = markdown.Parse(sn.RollbackPath, sn.RollbackSource)
	}
	return doc, rb, nil
}

// plan resolves everything a run needs from the workspace and the store:
// the environment's inventory, its variables (opsbook.yaml's, overridden
// by the server's; sensitive ones decrypted into Secrets) and the
// snapshot over all of it.
func (s *Server) plan(ctx context.Context, rel string, doc, rb *runbook.Document, envName string, params map[string]string) (*engine.Plan, error) {
	ws := s.catalog.Workspace()
	env, err := ws.Environment(envName)
	if err != nil {
		return nil, BadRequest("%v", err)
	}
	vars := map[string]string{}
	for k, v := range env.Variables {
		vars[k] = v
	}
	secrets := map[string]string{}
	stored, err := s.store.VariablesFor(ctx, envName)
	if err != nil {
		return nil, err
	}
	for _, v := range stored {
		if !v.Sensitive {
			vars[v.Name] = v.Value
			delete(secrets, v.Name)
			continue
		}
		pt, err := s.keys.Open(v.Value, VariableAAD(v.Environment, v.Name))
		if err != nil {
			return nil, fmt.Errorf("decrypt variable %s: %w", v.Name, err)
		}
		secrets[v.Name] = string(pt)
		delete(vars, v.Name)
	}
	p := &engine.Plan{
		Document: doc, Rollback: rb, Workspace: ws.Dir, Runbook: rel, Environment: envName,
		Hosts: env.Hosts, Variables: vars, Secrets: secrets, Params: params,
	}
	p.Snapshot = snapshot.Of(snapshot.FromDocuments(doc, rb, nil, vars)).String()
	return p, nil
}

// VariableAAD binds a sealed variable value to its environment and name.
func VariableAAD(env, name string) []byte { return []byte("variable/" + env + "/" + name) }

// ResumeRun queues an interrupted (or stopped) run to continue, with the
// documents it started with and its secret parameters unsealed.
func (s *Server) ResumeRun(ctx context.Context, run runbook.Run, actor, retryInterrupted string) error {
	if run.Status.Finished() {
		return Errorf(http.StatusConflict, "finished", "run %s is %s; start a new run instead", run.ID, run.Status)
	}
	alive, err := s.store.RunOwnerAlive(ctx, run.ID)
	if err != nil {
		return err
	}
	if alive {
		return Errorf(http.StatusConflict, "running", "run %s is executing (its lease is held); nothing to resume", run.ID)
	}
	plan, err := s.resumePlan(ctx, run)
	if err != nil {
		return err
	}
	return s.runs.submit(job{runID: run.ID, plan: plan, resume: true, actor: actor, retryInterrupted: retryInterrupted})
}

func (s *Server) resumePlan(ctx context.Context, run runbook.Run) (*engine.Plan, error) {
	sn, err := s.store.GetSnapshot(ctx, run.Snapshot)
	if err != nil {
		return nil, fmt.Errorf("run %s: its documents are not stored (%w); it cannot be resumed by the server", run.ID, err)
	}
	doc, rb, err := parseSnapshot(sn)
	if err != nil {
		return nil, err
	}
	params := map[string]string{}
	for k, v := range run.Params {
		params[k] = v
	}
	sealed, err := s.store.RunSecrets(ctx, run.ID)
	if err != nil {
		return nil, err
	}
	for name, sv := range sealed {
		pt, err := s.keys.Open(sv, runSecretAAD(run.ID, name))
		if err != nil {
			return nil, fmt.Errorf("run %s: unseal secret parameter %s: %w", run.ID, name, err)
		}
		params[name] = string(pt)
	}
	return s.plan(ctx, run.Runbook, doc, rb, run.Environment, params)
}

// resumeOrphans finds runs whose process died (a previous server, killed)
// and queues them to resume, and re-queues runs that were accepted but
// never started.
func (s *Server) resumeOrphans(ctx context.Context) {
	orphans, err := s.store.OrphanedRuns(ctx)
	if err != nil {
		s.log.Error("find interrupted runs", "err", err)
		return
	}
	for _, run := range orphans {
		if err := s.ResumeRun(ctx, run, "system", ""); err != nil {
			s.log.Warn("cannot resume interrupted run", "run", run.ID, "err", err)
			continue
		}
		s.log.Info("resuming interrupted run", "run", run.ID, "runbook", run.Runbook, "environment", run.Environment)
	}
	pending, err := s.store.ListRuns(ctx, store.RunFilter{Status: []runbook.RunStatus{runbook.RunPending}, Limit: store.MaxRunLimit})
	if err != nil {
		s.log.Error("find pending runs", "err", err)
		return
	}
	for _, run := range pending {
		alive, err := s.store.RunOwnerAlive(ctx, run.ID)
		if err != nil || alive {
			continue
		}
		plan, err := s.resumePlan(ctx, run)
		if err != nil {
			s.log.Warn("cannot start pending run", "run", run.ID, "err", err)
			continue
		}
		if err := s.runs.submit(job{runID: run.ID, plan: plan, actor: run.CreatedBy}); err != nil {
			s.log.Warn("cannot queue pending run", "run", run.ID, "err", err)
		}
	}
}

// CancelRun stops a run wherever it is in this server (executing, queued)
// or, when no live process owns it, records the cancellation directly.
func (s *Server) CancelRun(ctx context.Context, run runbook.Run, actor, reason string) error {
	return s.runs.cancel(ctx, run, actor, reason)
}
