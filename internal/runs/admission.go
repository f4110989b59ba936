package runs

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/opsbook/opsbook/internal/lifecycle"
	"github.com/opsbook/opsbook/internal/lifecycle/gates"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/store"
)

// taskAdmission is a task's run that its lifecycle gates let start: the
// task as read then and the report the run is recorded under.
type taskAdmission struct {
	task   *gates.Task
	report *gates.Report
}

// admitTask applies a task's lifecycle gates (docs/lifecycle.md) to a run
// of its runbook, exactly as `opsbook run` does: reviews, rehearsal,
// checklist, change window and freeze, with the emergency override for
// change: emergency runbooks. Runs of the task in the server's store count
// as rehearsals. It returns nil for a runbook that is not a task's. A
// refusal is a 409 that lists each gate in words.
func (s *Service) admitTask(ctx context.Context, rel string, docs Documents, envName, emergency string) (*taskAdmission, error) {
	name, ok := gates.TaskOf(rel)
	if !ok {
		return nil, nil
	}
	t, err := gates.Load(s.catalog.Workspace(), name)
	if err != nil {
		return nil, Errorf(http.StatusConflict, "task_unreadable", "task %s cannot be read, so its lifecycle gates cannot be checked: %v", name, err)
	}
	stored, err := s.store.ListRuns(ctx, store.RunFilter{Task: name, Limit: store.MaxRunLimit})
	if err != nil {
		return nil, err
	}
	verified, err := s.store.VerifiedRecords(ctx, name)
	if err != nil {
		return nil, err
	}
	// The server is the workspace's server: in a protected environment
	// only the reviews and ticks of its signed-in users count.
	rep, err := t.Admit(envName, s.now(), gates.Options{Emergency: emergency, StoreRuns: stored, Verified: &gates.Verified{Records: verified}})
	var refusal *gates.Refusal
	if errors.As(err, &refusal) {
		return nil, Errorf(http.StatusConflict, "gates_unmet", "%v\n%s", err, gateLines(rep))
	}
	if err != nil {
		return nil, BadRequest("%v", err)
	}
	task := Documents{Runbook: t.Runbook, Rollback: t.Rollback, Called: t.Called, Order: t.CalledInOrder()}
	if docs.content() != task.content() {
		// The gates judged the task's documents as they are now; a run of
		// other content (an older published snapshot) was not reviewed or
		// rehearsed as such, and its record would claim it was.
		if len(rep.Gates) > 0 {
			return nil, Errorf(http.StatusConflict, "not_current", "task %s: the content chosen (%s) is not the task's current documents (%s), which its gates judge; publish the current content, or run it with \"snapshot\": \"current\"",
				name, docs.content(), task.content())
		}
		return nil, nil // nothing to judge; the store keeps the run with its own snapshot
	}
	return &taskAdmission{task: t, report: rep}, nil
}

// admitStanding applies the change calendar to a run of a runbook that is
// not a task's, as `opsbook run` does (gates.AdmitStanding): a refusal is a
// 409 with the gates in words.
func (s *Service) admitStanding(rel string, doc *runbook.Document, envName, emergency string) error {
	rep, err := gates.AdmitStanding(s.catalog.Workspace(), rel, doc, envName, s.now(), emergency)
	var refusal *gates.Refusal
	if errors.As(err, &refusal) {
		return Errorf(http.StatusConflict, "gates_unmet", "%v\n%s", err, gateLines(rep))
	}
	if err != nil {
		return BadRequest("%v", err)
	}
	return nil
}

// gateLines is the gate list in words, one gate a line, as `opsbook run`
// prints it.
func gateLines(rep *gates.Report) string {
	var b strings.Builder
	rep.WriteGates(&b)
	return strings.TrimRight(b.String(), "\n")
}

// recordTaskFinish records a task run's end in the task's lifecycle file
// (a protected run completes the task). A resumed run's admission is read
// again from the file, where its start was recorded.
func (s *Service) recordTaskFinish(runID, actor string, adm *taskAdmission) {
	ctx := context.Background()
	run, err := s.store.GetRun(ctx, runID)
	if err != nil || !run.Status.Finished() && run.Status != runbook.RunInterrupted {
		return
	}
	if adm == nil {
		if adm, err = s.recordedAdmission(run.Runbook, run.ID, run.Environment, run.Emergency); adm == nil {
			if err != nil {
				s.log.Warn("cannot record the run in its task's lifecycle file", "run", run.ID, "err", err)
			}
			return
		}
	}
	if err := adm.task.RecordFinish(adm.report, run, actor); err != nil {
		s.log.Error("record the run in its task's lifecycle file", "run", run.ID, "err", err)
	}
}

// recordedAdmission rebuilds the admission of a run whose start the task's
// lifecycle file records, with the snapshot recorded then; nil when the
// run is not a recorded task run.
func (s *Service) recordedAdmission(rel, runID, envName, emergency string) (*taskAdmission, error) {
	name, ok := gates.TaskOf(rel)
	if !ok {
		return nil, nil
	}
	t, err := gates.Load(s.catalog.Workspace(), name)
	if err != nil {
		return nil, err
	}
	for _, r := range lifecycle.Runs(t.Records) {
		if r.RunID != runID {
			continue
		}
		t.Snapshot = r.Snapshot
		verified, err := s.store.VerifiedRecords(context.Background(), name)
		if err != nil {
			return nil, err
		}
		rep, err := t.Evaluate(envName, s.now(), gates.Options{Emergency: emergency, Verified: &gates.Verified{Records: verified}})
		if err != nil {
			return nil, fmt.Errorf("task %s: %w", name, err)
		}
		return &taskAdmission{task: t, report: rep}, nil
	}
	return nil, nil
}
