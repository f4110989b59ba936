package runs

import (
	"context"
	"errors"
	"time"

	"github.com/opsbook/opsbook/internal/store"
)

// StartTakeover takes over runs no live process executes — left by a node that
// died (kill -9, power loss) or by a previous start of this one — now and
// then every quarter of the lease ttl until Shutdown, so that a dead
// node's runs go on within 2× the ttl without anyone asking.
func (s *Service) StartTakeover(ctx context.Context) {
	if s.started.Swap(true) {
		return
	}
	s.Takeover(ctx)
	s.loops.Add(1)
	go func() {
		defer s.loops.Done()
		t := time.NewTicker(s.cfg.LeaseTTL / 4)
		defer t.Stop()
		for {
			select {
			case <-s.done:
				return
			case <-t.C:
				s.Takeover(s.ctx)
			}
		}
	}()
}

// Takeover is one pass: claims of dead nodes go back to the queue; runs
// that claim to be running or waiting but whose lease no live owner holds
// are queued to resume (exactly as `resume` would: completed steps are
// not repeated, an interrupted step re-runs only if idempotent, else the
// run asks "re-run?"); pending runs their node died before queueing are
// queued. Several nodes may pass at once: the queue holds a run once and
// the run's lease lets one process execute it.
func (s *Service) Takeover(ctx context.Context) {
	if n, err := s.store.ReleaseDeadClaims(ctx); err != nil {
		s.log.Warn("release claims of dead nodes", "err", err)
	} else if n > 0 {
		s.log.Info("runs claimed by dead nodes are queued again", "runs", n)
	}
	queued := 0
	orphans, err := s.store.OrphanedRuns(ctx)
	if err != nil {
		s.log.Error("find interrupted runs", "err", err)
	}
	for _, run := range orphans {
		added, err := s.store.Enqueue(ctx, store.QueuedRun{RunID: run.ID, Actor: "system"})
		if err != nil {
			s.log.Warn("cannot queue interrupted run", "run", run.ID, "err", err)
			continue
		}
		if added {
			queued++
			s.log.Info("taking over interrupted run", "run", run.ID, "runbook", run.Runbook, "environment", run.Environment)
		}
	}
	// A run is created, then queued: give a live node the time between.
	pending, err := s.store.UnqueuedPendingRuns(ctx, time.Now().Add(-s.cfg.LeaseTTL))
	if err != nil {
		s.log.Error("find pending runs", "err", err)
	}
	for _, id := range pending {
		run, err := s.store.GetRun(ctx, id)
		if err != nil {
			continue
		}
		if added, err := s.store.Enqueue(ctx, store.QueuedRun{RunID: id, Actor: run.CreatedBy}); err != nil {
			s.log.Warn("cannot queue pending run", "run", id, "err", err)
		} else if added {
			queued++
		}
	}
	if queued > 0 {
		s.signal()
	}
	s.forgetAdmissions(ctx)
}

// forgetAdmissions drops the admissions of task runs started here that
// another node executed to their end (it read the admission from the
// task's lifecycle file).
func (s *Service) forgetAdmissions(ctx context.Context) {
	s.mu.Lock()
	ids := make([]string, 0, len(s.admissions))
	for id := range s.admissions {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	for _, id := range ids {
		if run, err := s.store.GetRun(ctx, id); errors.Is(err, store.ErrNotFound) || err == nil && run.Status.Finished() {
			s.mu.Lock()
			delete(s.admissions, id)
			s.mu.Unlock()
		}
	}
}
