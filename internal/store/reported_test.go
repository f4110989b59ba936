package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/store"
	"github.com/opsbook/opsbook/internal/store/storetest"
)

func reportedEvents(from, to int64) []runbook.Event {
	var evs []runbook.Event
	for seq := from; seq <= to; seq++ {
		ev := runbook.Event{Seq: seq, Type: runbook.EventStepOutput, Step: "s", Stream: "stdout", Text: "line"}
		if seq == 1 {
			ev = runbook.Event{Seq: 1, Type: runbook.EventRunStarted, Text: "Reported title"}
		}
		evs = append(evs, ev)
	}
	return evs
}

// TestReportedRunExactlyOnce: fault — a batch sent again (its answer lost),
// overlapping batches, a batch that skips events, and batches of two
// senders at once. Every reporter event is stored once, in order.
func TestReportedRunExactlyOnce(t *testing.T) {
	storetest.ForEachDialect(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		run := runbook.Run{ID: store.NewRunID(), Runbook: "ops/runbooks/a.md", Environment: "dev", CreatedBy: "alice"}
		if created, err := s.CreateReportedRun(ctx, &run, "alice"); err != nil || !created {
			t.Fatalf("create: %v %v", created, err)
		}
		// Registering again (a retry) is the same run; someone else's is a conflict.
		again := runbook.Run{ID: run.ID, Runbook: run.Runbook, Environment: "dev"}
		if created, err := s.CreateReportedRun(ctx, &again, "alice"); err != nil || created {
			t.Fatalf("register again: %v %v", created, err)
		}
		other := runbook.Run{ID: run.ID, Runbook: run.Runbook, Environment: "dev"}
		if _, err := s.CreateReportedRun(ctx, &other, "mallory"); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("mallory registering alice's run: %v", err)
		}

		acked, out, err := s.AppendReportedEvents(ctx, run.ID, "alice", reportedEvents(1, 3))
		if err != nil || acked != 3 || len(out) != 3 {
			t.Fatalf("first batch: acked %d, %d stored, %v", acked, len(out), err)
		}
		// The same batch again, then one overlapping it.
		if acked, out, err = s.AppendReportedEvents(ctx, run.ID, "alice", reportedEvents(1, 3)); err != nil || acked != 3 || len(out) != 0 {
			t.Fatalf("batch sent again: acked %d, %d stored, %v", acked, len(out), err)
		}
		if acked, out, err = s.AppendReportedEvents(ctx, run.ID, "alice", reportedEvents(2, 5)); err != nil || acked != 5 || len(out) != 2 {
			t.Fatalf("overlapping batch: acked %d, %d stored, %v", acked, len(out), err)
		}
		// A gap is refused whole, naming where to send from.
		var gap *store.SeqGapError
		if _, _, err = s.AppendReportedEvents(ctx, run.ID, "alice", reportedEvents(7, 8)); !errors.As(err, &gap) || gap.Expected != 6 {
			t.Fatalf("batch with a gap: %v", err)
		}
		if _, _, err = s.AppendReportedEvents(ctx, run.ID, "mallory", reportedEvents(6, 6)); !errors.Is(err, store.ErrNotReporter) {
			t.Fatalf("mallory appending: %v", err)
		}
		// Two senders racing with the same batches.
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for from := int64(6); from <= 40; from += 5 {
					if _, _, err := s.AppendReportedEvents(ctx, run.ID, "alice", reportedEvents(from, from+4)); err != nil {
						var gap *store.SeqGapError
						if !errors.As(err, &gap) {
							t.Error(err)
						}
						return
					}
				}
			}()
		}
		wg.Wait()
		if _, _, err := s.AppendReportedEvents(ctx, run.ID, "alice", reportedEvents(1, 45)); err != nil {
			t.Fatal(err)
		}
		evs, err := s.Events(ctx, run.ID, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != 45 {
			t.Fatalf("%d events stored, want 45", len(evs))
		}
		for i, ev := range evs {
			if ev.Seq != int64(i+1) {
				t.Fatalf("event %d has seq %d", i+1, ev.Seq)
			}
		}
		got, err := s.GetRun(ctx, run.ID)
		if err != nil || got.Status != runbook.RunRunning || got.Title != "Reported title" || got.StartedAt.IsZero() {
			t.Fatalf("run after its events: %+v %v", got, err)
		}
		fin := runbook.Event{Seq: 46, Type: runbook.EventRunFinished, Data: map[string]string{"status": "succeeded"}, Time: time.Now()}
		if _, _, err := s.AppendReportedEvents(ctx, run.ID, "alice", []runbook.Event{fin}); err != nil {
			t.Fatal(err)
		}
		if got, _ = s.GetRun(ctx, run.ID); got.Status != runbook.RunSucceeded || got.FinishedAt.IsZero() {
			t.Fatalf("run after run.finished: %s, finished %v", got.Status, got.FinishedAt)
		}
	})
}

// TestReportedRunNeverTakenOver: fault — a reported run that looks
// orphaned (running, no lease: its process is on someone's laptop) or
// pending and unqueued. The server must not take it over and execute it.
func TestReportedRunNeverTakenOver(t *testing.T) {
	storetest.ForEachDialect(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		old := time.Now().Add(-time.Hour)
		running := runbook.Run{ID: store.NewRunID(), Runbook: "a.md", Environment: "dev", CreatedAt: old}
		pending := runbook.Run{ID: store.NewRunID(), Runbook: "a.md", Environment: "dev", CreatedAt: old}
		for _, r := range []*runbook.Run{&running, &pending} {
			if _, err := s.CreateReportedRun(ctx, r, "alice"); err != nil {
				t.Fatal(err)
			}
		}
		if _, _, err := s.AppendReportedEvents(ctx, running.ID, "alice", reportedEvents(1, 1)); err != nil {
			t.Fatal(err)
		}
		// The same shapes, executed by the server, are found.
		orphan := runbook.Run{ID: store.NewRunID(), Runbook: "a.md", Environment: "dev", Status: runbook.RunRunning, CreatedAt: old}
		lost := runbook.Run{ID: store.NewRunID(), Runbook: "a.md", Environment: "dev", CreatedAt: old}
		for _, r := range []*runbook.Run{&orphan, &lost} {
			if err := s.CreateRun(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		orphans, err := s.OrphanedRuns(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(orphans) != 1 || orphans[0].ID != orphan.ID {
			t.Fatalf("orphaned runs: %v, want only %s", orphans, orphan.ID)
		}
		unqueued, err := s.UnqueuedPendingRuns(ctx, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if len(unqueued) != 1 || unqueued[0] != lost.ID {
			t.Fatalf("unqueued pending runs: %v, want only %s", unqueued, lost.ID)
		}
	})
}

// TestRunReportOutbox: the CLI's outbox says what the server still lacks,
// and an acknowledgement never moves back.
func TestRunReportOutbox(t *testing.T) {
	storetest.ForEachDialect(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		run := runbook.Run{ID: store.NewRunID(), Runbook: "a.md", Environment: "dev"}
		if err := s.CreateRun(ctx, &run); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetRunReport(ctx, run.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("report of a run that reports nowhere: %v", err)
		}
		if err := s.CreateRunReport(ctx, run.ID, "https://ops.example.com"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AppendEvents(ctx, run.ID, reportedEvents(1, 3)...); err != nil {
			t.Fatal(err)
		}
		unsent, err := s.UnsentRunReports(ctx)
		if err != nil || len(unsent) != 1 || unsent[0].Registered {
			t.Fatalf("unsent: %+v %v", unsent, err)
		}
		if err := s.MarkRunReportRegistered(ctx, run.ID); err != nil {
			t.Fatal(err)
		}
		if err := s.SetRunReportSent(ctx, run.ID, 3); err != nil {
			t.Fatal(err)
		}
		if err := s.SetRunReportSent(ctx, run.ID, 2); err != nil {
			t.Fatal(err)
		}
		// Marking it again (resume) keeps what was acknowledged.
		if err := s.CreateRunReport(ctx, run.ID, "https://elsewhere.example.com"); err != nil {
			t.Fatal(err)
		}
		rep, err := s.GetRunReport(ctx, run.ID)
		if err != nil || !rep.Registered || rep.SentSeq != 3 || rep.Server != "https://ops.example.com" {
			t.Fatalf("report: %+v %v", rep, err)
		}
		if unsent, _ = s.UnsentRunReports(ctx); len(unsent) != 0 {
			t.Fatalf("unsent after everything was acknowledged: %+v", unsent)
		}
	})
}

// TestReportedDecisionsAsTaken: fault — a gate decided twice in one wait
// where the run executed (approvers=2, the second approval given after a
// resume under another local name); both are the reporter's on the
// server. The record keeps both instead of refusing the batch, which would
// stop the reporting of everything after it.
func TestReportedDecisionsAsTaken(t *testing.T) {
	storetest.ForEachDialect(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		run := runbook.Run{ID: store.NewRunID(), Runbook: "a.md", Environment: "dev"}
		if _, err := s.CreateReportedRun(ctx, &run, "alice"); err != nil {
			t.Fatal(err)
		}
		evs := []runbook.Event{
			{Seq: 1, Type: runbook.EventRunStarted},
			{Seq: 2, Type: runbook.EventGateWaiting, Step: "go", Data: map[string]string{"approvers": "2"}},
			{Seq: 3, Type: runbook.EventGateDecided, Step: "go", Actor: "alice", Data: map[string]string{"decision": "go"}},
			{Seq: 4, Type: runbook.EventGateDecided, Step: "go", Actor: "alice", Data: map[string]string{"decision": "go"}},
		}
		if acked, _, err := s.AppendReportedEvents(ctx, run.ID, "alice", evs); err != nil || acked != 4 {
			t.Fatalf("acked %d: %v", acked, err)
		}
		// The same two decisions appended by the server itself are refused.
		srv := runbook.Run{ID: store.NewRunID(), Runbook: "a.md", Environment: "dev"}
		if err := s.CreateRun(ctx, &srv); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AppendEvents(ctx, srv.ID, evs...); !errors.Is(err, store.ErrAlreadyDecided) {
			t.Fatalf("a double decision on a server run: %v", err)
		}
	})
}
