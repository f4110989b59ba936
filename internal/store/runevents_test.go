package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/store"
	"github.com/opsbook/opsbook/internal/store/storetest"
)

// A run and its first event are recorded by one transaction, and so are a
// run's last event and its final row. Fault: a write that fails halfway
// (an invalid event after the row, a row for a run that is not there);
// neither half may stay, or a run would exist without its run.started, or
// say "succeeded" with a log that does not end.
func TestRunRowAndEventsCommitTogether(t *testing.T) {
	storetest.ForEachDialect(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		started := runbook.Event{Type: runbook.EventRunStarted, Actor: "alice", Text: "Backup"}

		bad := runbook.Run{Runbook: "rb.md", Environment: "dev"}
		if _, err := s.CreateRunWithEvents(ctx, &bad, started, runbook.Event{Type: runbook.EventStepOutput, Stream: "fd9"}); !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("an invalid first event: %v, want ErrInvalid", err)
		}
		if _, err := s.GetRun(ctx, bad.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("the run of a refused first event exists: %v", err)
		}

		run := runbook.Run{Runbook: "rb.md", Environment: "dev", CreatedBy: "alice"}
		stored, err := s.CreateRunWithEvents(ctx, &run, started)
		if err != nil {
			t.Fatal(err)
		}
		if run.ID == "" || run.Status != runbook.RunPending || run.CreatedAt.IsZero() {
			t.Errorf("created run %+v: want an id, pending, a creation time", run)
		}
		if len(stored) != 1 || stored[0].Seq != 1 || stored[0].RunID != run.ID {
			t.Errorf("stored %+v, want run.started as seq 1 of %s", stored, run.ID)
		}
		got, err := s.GetRun(ctx, run.ID)
		if err != nil || got.CreatedBy != "alice" || got.Status != runbook.RunPending {
			t.Errorf("GetRun = %+v, %v", got, err)
		}
		again := run
		if _, err := s.CreateRunWithEvents(ctx, &again, started); !errors.Is(err, store.ErrConflict) {
			t.Errorf("a second run with the id: %v, want ErrConflict", err)
		}
		if last, _ := s.LastSeq(ctx, run.ID); last != 1 {
			t.Errorf("after the refused duplicate the log has %d events, want 1", last)
		}

		final := run
		final.Status, final.StartedAt, final.FinishedAt = runbook.RunSucceeded, time.Now(), time.Now()
		finished := runbook.Event{Type: runbook.EventRunFinished, Data: map[string]string{"status": "succeeded"}}
		if _, err := s.AppendEventsAndUpdateRun(ctx, final, finished, runbook.Event{}); !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("an invalid last event: %v, want ErrInvalid", err)
		}
		if got, _ := s.GetRun(ctx, run.ID); got.Status != runbook.RunPending {
			t.Errorf("the row of a refused last event says %s, want pending", got.Status)
		}
		gone := final
		gone.ID = "r-0000000000000000000000000Z"
		if _, err := s.AppendEventsAndUpdateRun(ctx, gone, finished); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("the end of an unknown run: %v, want ErrNotFound", err)
		}
		if _, err := s.AppendEventsAndUpdateRun(ctx, final, finished); err != nil {
			t.Fatal(err)
		}
		got, err = s.GetRun(ctx, run.ID)
		if err != nil || got.Status != runbook.RunSucceeded || got.FinishedAt.IsZero() {
			t.Errorf("after the last event GetRun = %+v, %v; want succeeded with a finish time", got, err)
		}
		if last, _ := s.LastSeq(ctx, run.ID); last != 2 {
			t.Errorf("the log has %d events, want 2", last)
		}
	})
}
