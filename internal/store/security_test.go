package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/store"
	"github.com/opsbook/opsbook/internal/store/storetest"
)

// TestOneDecisionPerPersonPerGate: 20 parallel approvals by one user wrote
// up to 6 gate.decided events (fault: a check-then-append race across
// requests and nodes). The store records one per person per gate wait;
// the others get ErrAlreadyDecided. Another person, and the same person
// after the gate waits afresh, are recorded.
func TestOneDecisionPerPersonPerGate(t *testing.T) {
	storetest.ForEachDialect(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		run := &runbook.Run{Runbook: "rb.md", Environment: "prod"}
		if err := s.CreateRun(ctx, run); err != nil {
			t.Fatal(err)
		}
		wait := runbook.Event{Type: runbook.EventGateWaiting, Step: "go", Data: map[string]string{"approvers": "2"}}
		if _, err := s.AppendEvents(ctx, run.ID, wait); err != nil {
			t.Fatal(err)
		}
		decide := func(actor string) error {
			_, err := s.AppendEvents(ctx, run.ID, runbook.Event{Type: runbook.EventGateDecided, Step: "go", Actor: actor,
				Text: "ok", Data: map[string]string{"decision": "go"}})
			return err
		}
		var wg sync.WaitGroup
		errs := make([]error, 20)
		for i := range errs {
			wg.Go(func() { errs[i] = decide("ann") })
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, store.ErrAlreadyDecided) || !errors.Is(err, store.ErrConflict):
				t.Errorf("unexpected error: %v", err)
			}
		}
		if ok != 1 {
			t.Errorf("%d of 20 parallel decisions by ann were recorded, want 1", ok)
		}
		if err := decide("bob"); err != nil {
			t.Errorf("a second person: %v", err)
		}
		// A decision in another phase (the rollback plan's gate of the same id) is another gate.
		if _, err := s.AppendEvents(ctx, run.ID, runbook.Event{Type: runbook.EventGateDecided, Step: "go", Actor: "ann",
			Text: "ok", Data: map[string]string{"decision": "go", "phase": "rollback"}}); err != nil {
			t.Errorf("another phase: %v", err)
		}
		if _, err := s.AppendEvents(ctx, run.ID, wait); err != nil {
			t.Fatal(err)
		}
		if err := decide("ann"); err != nil {
			t.Errorf("after the gate waits afresh: %v", err)
		}
		n := 0
		for ev, err := range s.AllEvents(ctx, run.ID, 0) {
			if err != nil {
				t.Fatal(err)
			}
			if ev.Type == runbook.EventGateDecided && ev.Actor == "ann" && ev.Data["phase"] == "" {
				n++
			}
		}
		if n != 2 {
			t.Errorf("%d main-phase decisions by ann in the log, want 2 (one per wait)", n)
		}
	})
}
