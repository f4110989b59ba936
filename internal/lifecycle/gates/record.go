package gates

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/opsbook/opsbook/internal/lifecycle"
	"github.com/opsbook/opsbook/internal/runbook"
)

// Refusal is the error of a run that a gate does not let start. The CLI
// maps it to exit status 5, the server to 409; Report says what is missing.
type Refusal struct{ Report *Report }

func (e *Refusal) Error() string {
	var unmet []string
	for _, g := range e.Report.Gates {
		if !g.Passes() {
			unmet = append(unmet, g.ID)
		}
	}
	if e.Report.Task == "" {
		return fmt.Sprintf("runbook %s may not run in %s now: %s not met", e.Report.Runbook, e.Report.Environment, strings.Join(unmet, ", "))
	}
	return fmt.Sprintf("task %s may not run in %s yet: %s not met (see `opsbook status %s --env %s`)",
		e.Report.Task, e.Report.Environment, strings.Join(unmet, ", "), e.Report.Task, e.Report.Environment)
}

// Admit evaluates the gates for a run of the task in envName at now and
// returns a *Refusal when one is unmet. The report is returned either way.
func (t *Task) Admit(envName string, now time.Time, o Options) (*Report, error) {
	rep, err := t.Evaluate(envName, now, o)
	if err != nil {
		return nil, err
	}
	if !rep.Allowed() {
		return rep, &Refusal{Report: rep}
	}
	return rep, nil
}

// RecordStart records in the lifecycle file that run (just created by the
// engine) started under rep, and the emergency override first when rep
// waived a window or a freeze, so the record shows it before anything ran.
func (t *Task) RecordStart(rep *Report, run runbook.Run, actor string) error {
	if run.ID == "" {
		return errors.New("record run start: the run has no id")
	}
	started := run.StartedAt
	if started.IsZero() {
		started = run.CreatedAt
	}
	if ov := rep.Overrides(); len(ov) > 0 {
		err := t.Append(lifecycle.Record{Type: lifecycle.Override, Actor: actor, RunID: run.ID,
			Environment: rep.Environment, Snapshot: t.Snapshot, Note: rep.Emergency,
			Data: map[string]string{"overrode": strings.Join(ov, ",")}})
		if err != nil {
			return err
		}
	}
	return t.Append(lifecycle.Record{Type: lifecycle.Run, Actor: actor, RunID: run.ID, Environment: rep.Environment,
		Snapshot: t.Snapshot, Status: string(runbook.RunRunning), StartedAt: started.UTC(),
		Data: runData(run, rep.Emergency)})
}

// RecordFinish records the final (or interrupted) status of a run. A run
// in a protected environment that ended succeeded, failed or rolled back
// completes the task with that outcome.
func (t *Task) RecordFinish(rep *Report, run runbook.Run, actor string) error {
	finished := run.FinishedAt
	if finished.IsZero() && run.Status.Finished() {
		finished = time.Now()
	}
	rec := lifecycle.Record{Type: lifecycle.Run, Actor: actor, RunID: run.ID, Environment: rep.Environment,
		Snapshot: t.Snapshot, Status: string(run.Status), StartedAt: run.StartedAt.UTC(), Data: runData(run, rep.Emergency)}
	if !finished.IsZero() {
		rec.FinishedAt = finished.UTC()
	}
	if err := t.Append(rec); err != nil {
		return err
	}
	if !rep.Protected {
		return nil
	}
	switch run.Status {
	case runbook.RunSucceeded, runbook.RunFailed, runbook.RunRolledBack:
		return t.Append(lifecycle.Record{Type: lifecycle.Completed, Actor: actor, RunID: run.ID,
			Environment: rep.Environment, Status: string(run.Status)})
	}
	return nil
}

func runData(run runbook.Run, emergency string) map[string]string {
	d := map[string]string{"run_snapshot": run.Snapshot}
	if run.Runbook != "" {
		d["runbook"] = run.Runbook
	}
	if emergency != "" {
		d["emergency"] = emergency
	}
	return d
}
