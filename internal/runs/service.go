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
	"encoding/json"
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
	// Workers is how many runs execute at once on this node; default 64.
	// A run waiting for a decision (a gate) gives its worker back while it
	// waits and takes one again to go on.
	Workers int
	// Node names this process among the nodes sharing the store; default
	// store.ProcessOwner(), which is also the engine's lease owner.
	Node string
	// Addr is where this node serves, shown in the node list.
	Addr string
	// LeaseTTL is how long this node's lease lasts without renewal; it is
	// renewed every third of it. The engine's run leases should use the
	// same ttl: a dead node's runs are taken over within 2× it. Default 15 s.
	LeaseTTL time.Duration
	// PollInterval is how often an idle node looks at the queue for runs
	// accepted by other nodes; default 500 ms. Runs accepted here start at
	// once.
	PollInterval time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// StepFinished and RunFinished, when set, observe runs for metrics.
	StepFinished func(status string, d time.Duration)
	RunFinished  func(status runbook.RunStatus)
}

// Service executes runs on a bounded number of workers. Runs wait in the
// store's queue (store.Enqueue), so a run accepted by any node survives
// that node and is executed by whichever node has a free worker.
type Service struct {
	cfg     Config
	store   *store.Store
	engine  *engine.Engine
	keys    *secret.Keyring
	catalog Catalog
	log     *slog.Logger

	ctx      context.Context // runs execute under it; cancelled only when the service gives up on them
	stop     context.CancelFunc
	done     chan struct{} // closed by Shutdown: stop claiming
	unlisten context.CancelFunc
	loops    sync.WaitGroup
	execs    sync.WaitGroup
	closed   atomic.Bool
	slots    chan struct{} // one per worker busy executing
	wake     chan struct{} // a run was queued here
	started  atomic.Bool   // the takeover loop runs

	mu sync.Mutex
	// admissions are the lifecycle admissions of task runs started here,
	// until a worker of this node executes them.
	admissions map[string]*taskAdmission
	hub        *hub
}

// New starts a service: its node lease and the dispatcher that claims
// queued runs for free workers. StartTakeover takes over runs of dead nodes.
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
	if cfg.Node == "" {
		cfg.Node = store.ProcessOwner()
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = 15 * time.Second
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 500 * time.Millisecond
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Audit == nil {
		cfg.Audit = func(context.Context, string, string, string, string, map[string]string) error { return nil }
	}
	ctx, stop := context.WithCancel(context.Background())
	s := &Service{cfg: cfg, store: cfg.Store, engine: cfg.Engine, keys: cfg.Keys, catalog: cfg.Catalog, log: cfg.Logger,
		ctx: ctx, stop: stop, done: make(chan struct{}), slots: make(chan struct{}, cfg.Workers), wake: make(chan struct{}, 1),
		admissions: map[string]*taskAdmission{}, hub: newHub()}
	if err := s.store.HeartbeatNode(ctx, cfg.Node, cfg.Addr, cfg.LeaseTTL); err != nil {
		return nil, err
	}
	s.loops.Add(2)
	go s.heartbeat()
	go s.dispatch()
	lctx, unlisten := context.WithCancel(ctx)
	s.unlisten = unlisten
	s.loops.Add(1)
	go func() {
		defer s.loops.Done()
		s.listen(lctx)
	}()
	return s, nil
}

// listen follows the store's notifications (PostgreSQL): a run's log grew
// on some node — wake its live views here, and the run itself if it
// executes here and waits for a decision; a run was queued — claim it if a
// worker is free. SQLite has one node, whose own observer does all that.
func (s *Service) listen(ctx context.Context) {
	err := s.store.Listen(ctx, func(channel, runID string) {
		switch channel {
		case store.ChannelEvents:
			s.hub.notify(runID)
			s.engine.Wake(runID)
		case store.ChannelQueue:
			s.signal()
		case store.ChannelCancel:
			var req cancelRequest
			if json.Unmarshal([]byte(runID), &req) == nil && s.engine.Cancel(req.Run, req.Actor, req.Reason) {
				s.log.Info("run cancelled at the request of another node", "run", req.Run, "actor", req.Actor)
			}
		default: // (re)connected: catch up with anything missed
			s.hub.notifyAll()
			s.signal()
		}
	}, store.ChannelEvents, store.ChannelQueue, store.ChannelCancel)
	if err != nil && !errors.Is(err, errors.ErrUnsupported) {
		s.log.Warn("listen for store notifications", "err", err)
	}
}

func (s *Service) now() time.Time { return s.cfg.Now() }

// Node is this node's name.
func (s *Service) Node() string { return s.cfg.Node }

// Subscribe returns a channel that is signalled when a run's log grows in
// this process, and a function to stop listening.
func (s *Service) Subscribe(runID string) (<-chan struct{}, func()) { return s.hub.subscribe(runID) }

// SubscribeAll is Subscribe for the news of every run (a run queued,
// its log grown, its end).
func (s *Service) SubscribeAll() (<-chan struct{}, func()) { return s.hub.subscribe(allRuns) }

// Closed reports whether the service has stopped taking runs.
func (s *Service) Closed() bool { return s.closed.Load() }

// QueueDepth is how many accepted runs wait for a worker on any node.
func (s *Service) QueueDepth() int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	n, err := s.store.QueueDepth(ctx)
	if err != nil {
		s.log.Warn("count queued runs", "err", err)
	}
	return n
}

// Executing is how many workers of this node execute a run now (runs
// waiting for a decision hold none).
func (s *Service) Executing() int { return len(s.slots) }

// heartbeat renews this node's lease every third of its ttl.
func (s *Service) heartbeat() {
	defer s.loops.Done()
	t := time.NewTicker(s.cfg.LeaseTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		}
		if err := s.store.HeartbeatNode(s.ctx, s.cfg.Node, s.cfg.Addr, s.cfg.LeaseTTL); err != nil {
			s.log.Warn("renew node lease", "err", err)
		}
	}
}

// dispatch claims queued runs whenever workers are free, as many at once
// as there are free workers.
func (s *Service) dispatch() {
	defer s.loops.Done()
	poll := time.NewTicker(s.cfg.PollInterval)
	defer poll.Stop()
	for {
		select {
		case s.slots <- struct{}{}: // at least one worker is free
		case <-s.done:
			return
		}
		claimed, err := s.store.ClaimQueued(s.ctx, s.cfg.Node, 1+cap(s.slots)-len(s.slots))
		if err != nil {
			s.log.Warn("claim queued runs", "err", err)
		}
		for i, q := range claimed {
			if i > 0 {
				s.slots <- struct{}{} // free when claimed; a parked run going on may take it first
			}
			s.execs.Add(1)
			go s.execute(q)
		}
		if len(claimed) > 0 {
			continue
		}
		<-s.slots
		select {
		case <-s.wake:
		case <-poll.C:
		case <-s.done:
			return
		}
	}
}

// signal wakes the dispatcher: a run was queued.
func (s *Service) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// execute runs a claimed run to its end (or until its execution stops
// here) on the worker the dispatcher took for it.
func (s *Service) execute(q store.QueuedRun) {
	defer s.execs.Done()
	held := true
	var heldMu sync.Mutex
	defer func() {
		heldMu.Lock()
		if held {
			<-s.slots
		}
		heldMu.Unlock()
	}()
	s.mu.Lock()
	adm := s.admissions[q.RunID]
	delete(s.admissions, q.RunID)
	s.mu.Unlock()
	ctx := context.WithoutCancel(s.ctx)
	run, err := s.store.GetRun(ctx, q.RunID)
	if errors.Is(err, store.ErrNotFound) {
		return // deleted, and its queue row with it
	}
	if err != nil {
		s.log.Error("read queued run", "run", q.RunID, "err", err)
		s.unclaim(q, s.cfg.LeaseTTL)
		return
	}
	if run.Status.Finished() {
		s.dequeue(q) // cancelled while queued
		return
	}
	plan, err := s.resumePlan(ctx, run)
	if err != nil {
		s.log.Warn("cannot execute queued run", "run", run.ID, "err", err)
		s.unclaim(q, time.Minute)
		return
	}
	o := engine.ExecOptions{Actor: q.Actor, RetryInterrupted: q.RetryInterrupted, Observe: func(ev runbook.Event) {
		if ev.Type == runbook.EventStepFinished && s.cfg.StepFinished != nil {
			if ms, err := strconv.ParseFloat(ev.Data["duration_ms"], 64); err == nil {
				s.cfg.StepFinished(ev.Data["status"], time.Duration(ms*float64(time.Millisecond)))
			}
		}
		s.hub.notify(ev.RunID)
	}, Parked: func(waiting bool) {
		// A run waiting for someone gives its worker back; it takes one
		// again (waiting for it if need be) before it goes on.
		if waiting {
			heldMu.Lock()
			held = false
			heldMu.Unlock()
			<-s.slots
			s.signal()
			return
		}
		s.slots <- struct{}{}
		heldMu.Lock()
		held = true
		heldMu.Unlock()
	}}
	var status runbook.RunStatus
	if run.Status == runbook.RunPending {
		status, err = s.engine.Execute(s.ctx, run.ID, plan, o)
	} else {
		status, err = s.engine.Resume(s.ctx, run.ID, plan, o)
	}
	if errors.Is(err, store.ErrLocked) {
		// Another live process executes it: look again once its lease
		// could have lapsed.
		s.unclaim(q, s.cfg.LeaseTTL/2)
		return
	}
	s.dequeue(q)
	s.hub.notify(run.ID)
	s.recordTaskFinish(run.ID, q.Actor, adm)
	if err != nil {
		s.log.Error("run ended with an error", "run", run.ID, "err", err)
		return
	}
	if s.cfg.RunFinished != nil {
		s.cfg.RunFinished(status)
	}
	s.log.Info("run ended", "run", run.ID, "status", status, "node", s.cfg.Node)
}

func (s *Service) unclaim(q store.QueuedRun, after time.Duration) {
	if err := s.store.Unclaim(context.Background(), q.RunID, s.cfg.Node, time.Now().Add(after)); err != nil {
		s.log.Warn("put run back in the queue", "run", q.RunID, "err", err)
	}
}

func (s *Service) dequeue(q store.QueuedRun) {
	if err := s.store.Dequeue(context.Background(), q.RunID, s.cfg.Node); err != nil {
		s.log.Warn("remove run from the queue", "run", q.RunID, "err", err)
	}
}

// enqueue puts an accepted run in the store's queue, durable before the
// caller answers, and wakes this node's dispatcher.
func (s *Service) enqueue(ctx context.Context, q store.QueuedRun, adm *taskAdmission) error {
	if s.closed.Load() {
		return Errorf(http.StatusServiceUnavailable, "shutting_down", "the server is shutting down; start the run again once it is back")
	}
	if adm != nil {
		s.mu.Lock()
		s.admissions[q.RunID] = adm
		s.mu.Unlock()
	}
	if _, err := s.store.Enqueue(ctx, q); err != nil {
		return err
	}
	s.hub.notify(q.RunID)
	s.signal()
	return nil
}

// Cancel stops a run wherever it is: executing here, executing on another
// node (asked through the store's notifications, PostgreSQL), queued, or
// executing nowhere (pending or interrupted, e.g. left by a dead node).
func (s *Service) Cancel(ctx context.Context, run runbook.Run, actor, reason string) error {
	if err := s.refuseReported(ctx, run, "stop"); err != nil {
		return err
	}
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
		return s.cancelElsewhere(ctx, run, actor, reason)
	}
	// Queued or left by a dead process: record it here. A worker that
	// claims it later finds it finished and drops it.
	return s.recordCancel(run.ID, actor, reason)
}

// cancelRequest is what a node asks of the node executing a run.
type cancelRequest struct {
	Run    string `json:"run"`
	Actor  string `json:"actor"`
	Reason string `json:"reason"`
}

// cancelElsewhere asks the node executing the run (PostgreSQL: a
// notification every node hears) to cancel it, and waits up to 10 s for
// the cancellation in the run's log.
func (s *Service) cancelElsewhere(ctx context.Context, run runbook.Run, actor, reason string) error {
	elsewhere := Errorf(http.StatusConflict, "elsewhere", "run %s executes in another process that did not cancel it; cancel it there (or on the server node that runs it)", run.ID)
	payload, _ := json.Marshal(cancelRequest{Run: run.ID, Actor: actor, Reason: reason})
	news, stop := s.hub.subscribe(run.ID)
	defer stop()
	if err := s.store.Notify(ctx, store.ChannelCancel, string(payload)); errors.Is(err, errors.ErrUnsupported) {
		return elsewhere // SQLite: a CLI process executes it
	} else if err != nil {
		return err
	}
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	poll := time.NewTicker(time.Second)
	defer poll.Stop()
	for {
		if cur, err := s.store.GetRun(ctx, run.ID); err == nil && cur.Status.Finished() {
			return nil
		}
		select {
		case <-news:
		case <-poll.C:
		case <-deadline.C:
			return elsewhere
		case <-ctx.Done():
			return ctx.Err()
		}
	}
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

// Shutdown stops taking runs and waits for the executing ones up to the
// deadline of ctx; this node's lease is given up either way. Runs still
// executing then are abandoned: their leases lapse and a live node (or the
// next start) takes them over.
func (s *Service) Shutdown(ctx context.Context) error {
	if s.closed.Swap(true) {
		return nil
	}
	close(s.done)
	s.unlisten()
	s.loops.Wait()
	done := make(chan struct{})
	go func() { s.execs.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("%d runs still executing at the shutdown deadline; a live node or the next start resumes them", s.Executing())
	}
	if rerr := s.store.RemoveNode(context.WithoutCancel(ctx), s.cfg.Node); rerr != nil {
		s.log.Warn("give up node lease", "err", rerr)
	}
	return err
}
