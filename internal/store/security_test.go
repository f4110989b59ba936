package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/opsbook/opsbook/internal/audit"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/secret"
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

// TestAuditAnchorCatchesRebuiltChain: with write access to the database
// alone, an attacker edited entry 2 and recomputed every later hash and
// the head — the plain SHA-256 chain verified (fault: a chain anyone can
// rebuild). The head's anchor, an HMAC under the master key, does not
// match; the next entry the server writes keeps the mark; an exported
// head shows the rewrite even to someone who holds the key.
func TestAuditAnchorCatchesRebuiltChain(t *testing.T) {
	storetest.ForEachDialect(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		keys, err := secret.NewKeyring("k1", bytes.Repeat([]byte{7}, secret.KeySize))
		if err != nil {
			t.Fatal(err)
		}
		s.SetAuditAnchor(keys)
		var entries []audit.Entry
		for i := range 4 {
			e, err := s.AppendAudit(ctx, audit.Entry{Actor: "alice", Action: "variable.set", Target: fmt.Sprintf("variable/V%d", i)})
			if err != nil {
				t.Fatal(err)
			}
			entries = append(entries, e)
		}
		exported := entries[3]
		if rep, err := s.VerifyAudit(ctx); err != nil || rep.Problem != nil || rep.Anchor == "" {
			t.Fatalf("intact log: %+v %v", rep, err)
		}
		// The rebuild: entry 2 says mallory did it, every hash after it
		// recomputed, the head moved along.
		var last *audit.Entry
		for i, e := range entries {
			if i == 1 {
				e.Actor = "mallory"
			}
			e = audit.Seal(last, e)
			if _, err := store.ExecForTest(s, ctx, `UPDATE audit_log SET actor = $1, prev = $2, hash = $3 WHERE seq = $4`, e.Actor, e.Prev, e.Hash, e.Seq); err != nil {
				t.Fatal(err)
			}
			last = &e
		}
		if _, err := store.ExecForTest(s, ctx, `UPDATE audit_head SET hash = $1 WHERE id = 1`, last.Hash); err != nil {
			t.Fatal(err)
		}
		s.SetAuditAnchor(nil)
		if rep, _ := s.VerifyAudit(ctx); rep.Problem != nil {
			t.Fatalf("without the anchor the rebuilt chain should verify (that is the attack): %+v", rep.Problem)
		}
		s.SetAuditAnchor(keys)
		rep, err := s.VerifyAudit(ctx)
		if err != nil || rep.Problem == nil || !strings.Contains(rep.Problem.Reason, "anchor does not match") {
			t.Fatalf("rebuilt chain: %+v %v, want the anchor to fail", rep.Problem, err)
		}
		// The server writes on: the mark stays.
		if _, err := s.AppendAudit(ctx, audit.Entry{Actor: "bob", Action: "login", Target: "user/bob"}); err != nil {
			t.Fatal(err)
		}
		if err := s.AnchorAudit(ctx); err != nil {
			t.Fatal(err)
		}
		rep, _ = s.VerifyAudit(ctx)
		if rep.Problem == nil || !strings.Contains(rep.Problem.Reason, "rewritten") {
			t.Fatalf("after the next entry: %+v, want the rewrite still reported", rep.Problem)
		}
		// The exported head.
		if p := s.CheckAuditEntry(ctx, exported.Seq, exported.Hash); p == nil {
			t.Fatal("the exported head still matches a rewritten log")
		}
		if p := s.CheckAuditEntry(ctx, 1, entries[0].Hash); p != nil {
			t.Fatalf("entry 1 was not touched: %+v", p)
		}
		// Another master key cannot vouch for the head either.
		other, _ := secret.NewKeyring("k1", bytes.Repeat([]byte{8}, secret.KeySize))
		s.SetAuditAnchor(other)
		if rep, _ := s.VerifyAudit(ctx); rep.Problem == nil {
			t.Fatal("a head anchored with another key verifies")
		}
	})
}
