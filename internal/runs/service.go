// Package runs is the run service: the one door through which every
// caller — the JSON API, the web UI, triggers, the CLI — starts, queues,
// resumes, cancels and decides runs. It owns the workers that execute runs
// inside a server process, the queue, lifecycle admission, the scheduler of
// cron triggers and the takeover of runs whose process died. Transports
// (internal/server and its api and ui packages) only translate requests
// into calls here; the engine below executes one run.
package runs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opsbook/opsbook/internal/engine"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/secret"
	"github.com/opsbook/opsbook/internal/store"
	"github.com/opsbook/opsbook/internal/workspace"
)

// Catalog is the workspace as the server reads it.
type Catalog interface {
	// Workspace is the workspace as last read.
	Workspace() *workspace.Workspace
	// ProjectOf is the project a runbook belongs to, for grants.
	ProjectOf(rel string) string
	// Current returns the documents a run of the runbook at rel executes
	// as the workspace has them now; an error when it is not there or has
	// errors.
	Current(rel string) (Documents, error)
}

// AuditFunc appends an entry to the audit log.
type AuditFunc func(ctx context.Context, actor, remote, action, target string, detail map[string]string) error

// Config configures a Service.
type Config struct {
	Store   *store.Store
	Engine  *engine.Engine
	Keys    *secret.Keyring
	Catalog Catalog
	Logger  *slog.Logger
	// Audit records what the service does on behalf of someone.
	Audit AuditFunc
	// Workers is how many runs execute at once; default 64. A run waiting
	// at a gate holds its worker.
	Workers int
	// Now is the clock; default time.Now.
	Now func() time.Time
	// StepFinished and RunFinished, when set, observe runs for metrics.
	StepFinished func(status string, d time.Duration)
	RunFinished  func(status runbook.RunStatus)
}

// Service executes runs on a fixed pool of workers inside the process.
type Service struct {
	cfg     Config
	store   *store.Store
	engine  *engine.Engine
	keys    *secret.Keyring
	catalog Catalog
	log     *slog.Logger

	queue   chan job
	ctx     context.Context // runs execute under it; cancelled only when the service gives up on them
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
	// task is the lifecycle admission of a task's run started here; nil
	// otherwise (and on resume, where the task's file is read again).
	task *taskAdmission
}

// New starts a service and its workers.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Engine == nil || cfg.Keys == nil || cfg.Catalog == nil {
		return nil, errors.New("runs: Store, Engine, Keys and Catalog are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 64
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Audit == nil {
		cfg.Audit = func(context.Context, string, string, string, string, map[string]string) error { return nil }
	}
	ctx, stop := context.WithCancel(context.Background())
	s := &Service{cfg: cfg, store: cfg.Store, engine: cfg.Engine, keys: cfg.Keys, catalog: cfg.Catalog, log: cfg.Logger,
		queue: make(chan job, 100_000), ctx: ctx, stop: stop, dropped: map[string]string{}, hub: newHub()}
	for i := 0; i < cfg.Workers; i++ {
		s.wg.Add(1)
		go s.worker()
	}
	return s, nil
}

func (s *Service) now() time.Time { return s.cfg.Now() }

// Subscribe returns a channel that is signalled when a run's log grows in
// this process, and a function to stop listening.
func (s *Service) Subscribe(runID string) (<-chan struct{}, func()) { return s.hub.subscribe(runID) }

// Closed reports whether the service has stopped taking runs.
func (s *Service) Closed() bool { return s.closed.Load() }

// QueueDepth is how many runs wait for a worker here.
func (s *Service) QueueDepth() int { return len(s.queue) }

// Executing is how many runs execute on this process's workers now.
func (s *Service) Executing() int { return int(s.running.Load()) }

func (s *Service) worker() {
	defer s.wg.Done()
	for j := range s.queue {
		s.running.Add(1)
		s.execute(j)
		s.running.Add(-1)
	}
}

func (s *Service) execute(j job) {
	s.mu.Lock()
	reason, dropped := s.dropped[j.runID]
	delete(s.dropped, j.runID)
	s.mu.Unlock()
	if dropped {
		if err := s.recordCancel(j.runID, j.actor, reason); err != nil {
			s.log.Error("cancel queued run", "run", j.runID, "err", err)
		}
		return
	}
	o := engine.ExecOptions{Actor: j.actor, RetryInterrupted: j.retryInterrupted, Observe: func(ev runbook.Event) {
		if ev.Type == runbook.EventStepFinished && s.cfg.StepFinished != nil {
			if ms, err := strconv.ParseFloat(ev.Data["duration_ms"], 64); err == nil {
				s.cfg.StepFinished(ev.Data["status"], time.Duration(ms*float64(time.Millisecond)))
			}
		}
		s.hub.notify(ev.RunID)
	}}
	var status runbook.RunStatus
	var err error
	if j.resume {
		status, err = s.engine.Resume(s.ctx, j.runID, j.plan, o)
	} else {
		status, err = s.engine.Execute(s.ctx, j.runID, j.plan, o)
	}
	s.hub.notify(j.runID)
	s.recordTaskFinish(j)
	if err != nil {
		s.log.Error("run ended with an error", "run", j.runID, "err", err)
		return
	}
	if s.cfg.RunFinished != nil {
		s.cfg.RunFinished(status)
	}
	s.log.Info("run ended", "run", j.runID, "status", status)
}

// submit queues a run for a worker.
func (s *Service) submit(j job) error {
	if s.closed.Load() {
		return Errorf(http.StatusServiceUnavailable, "shutting_down", "the server is shutting down; start the run again once it is back")
	}
	select {
	case s.queue <- j:
		s.hub.notify(j.runID)
		return nil
	default:
		return Errorf(http.StatusServiceUnavailable, "queue_full", "too many runs are queued; try again later")
	}
}

// Cancel stops a run: executing here, queued here, or executing nowhere
// (pending or interrupted, e.g. left by a previous server).
func (s *Service) Cancel(ctx context.Context, run runbook.Run, actor, reason string) error {
	if s.engine.Cancel(run.ID, actor, reason) {
		return nil
	}
	if run.Status.Finished() {
		return Errorf(http.StatusConflict, "finished", "run %s is already %s", run.ID, run.Status)
	}
	alive, err := s.store.RunOwnerAlive(ctx, run.ID)
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
		s.mu.Lock()
		s.dropped[run.ID] = reason
		s.mu.Unlock()
	}
	return s.recordCancel(run.ID, actor, reason)
}

func (s *Service) recordCancel(runID, actor, reason string) error {
	ctx := context.Background()
	run, err := s.store.GetRun(ctx, runID)
	if err != nil {
		return err
	}
	if run.Status.Finished() {
		return nil
	}
	lease, err := s.store.AcquireRun(ctx, runID, "cancel:"+store.ProcessOwner(), 30*time.Second)
	if err != nil {
		return fmt.Errorf("cancel run %s: %w", runID, err)
	}
	defer lease.Release(ctx)
	_, err = s.store.AppendEvents(ctx, runID,
		runbook.Event{Type: runbook.EventRunCancelled, Actor: actor, Text: reason},
		runbook.Event{Type: runbook.EventRunFinished, Data: map[string]string{"status": string(runbook.RunCancelled)}})
	if err != nil {
		return fmt.Errorf("record cancellation of run %s: %w", runID, err)
	}
	run.Status, run.FinishedAt = runbook.RunCancelled, time.Now()
	if err := s.store.UpdateRun(ctx, run); err != nil {
		return err
	}
	s.hub.notify(runID)
	return nil
}

// Shutdown stops taking runs and waits for the running ones up to the
// deadline of ctx. Runs still executing then are abandoned: their leases
// lapse and the next start finds them interrupted and resumes them.
func (s *Service) Shutdown(ctx context.Context) error {
	if s.closed.Swap(true) {
		return nil
	}
	close(s.queue)
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%d runs still executing at the shutdown deadline; they will be resumed on the next start", s.Executing())
	}
}
