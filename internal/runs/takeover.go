package runs

import (
	"context"

	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/store"
)

// ResumeOrphans finds runs whose process died (a previous server, killed)
// and queues them to resume, and re-queues runs that were accepted but
// never started.
func (s *Service) ResumeOrphans(ctx context.Context) {
	orphans, err := s.store.OrphanedRuns(ctx)
	if err != nil {
		s.log.Error("find interrupted runs", "err", err)
		return
	}
	for _, run := range orphans {
		if err := s.Resume(ctx, run, "system", ""); err != nil {
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
		if err := s.submit(job{runID: run.ID, plan: plan, actor: run.CreatedBy}); err != nil {
			s.log.Warn("cannot queue pending run", "run", run.ID, "err", err)
		}
	}
}
