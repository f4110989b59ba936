package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/opsbook/opsbook/internal/runbook"
)

// appendDirect keeps statements prepared on the append connection outside
// database/sql. Fault class: a connection closed with live statements is
// only half closed by SQLite (sqlite3_close_v2 waits for them), so the
// store's last Close would leave the write-ahead log behind, not
// checkpointed, and the file open. Close must finalize them first: after
// it the -wal file is gone, as SQLite removes it when the last connection
// really closes.
func TestCloseFinalizesDirectStatements(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "d.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	run := runbook.Run{Runbook: "rb.md"}
	if err := s.CreateRun(ctx, &run); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := s.AppendEvents(ctx, run.ID, runbook.Event{Type: runbook.EventStepStarted, Step: "a", Attempt: 1},
			runbook.Event{Type: runbook.EventStepFinished, Step: "a", Data: map[string]string{"status": "succeeded"}}); err != nil {
			t.Fatal(err)
		}
	}
	if s.direct.conn == nil {
		t.Fatal("the appends did not take the direct path")
	}
	if _, err := os.Stat(path + "-wal"); err != nil {
		t.Fatalf("no write-ahead log while the store is open: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + "-wal"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the write-ahead log is still there after Close (%v): a connection was left open", err)
	}
	// And what was appended is all there, in order, for the next opener.
	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	evs, err := s.Events(ctx, run.ID, 0, 0)
	if err != nil || len(evs) != 6 || evs[5].Seq != 6 {
		t.Fatalf("after reopening: %d events, %v", len(evs), err)
	}
}

// The direct path is taken only for a context that is never done: a
// cancelled one is refused before anything is written, as database/sql
// refuses it.
func TestAppendWithCancelledContext(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "d.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	run := runbook.Run{Runbook: "rb.md"}
	if err := s.CreateRun(ctx, &run); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.AppendEvents(cctx, run.ID, runbook.Event{Type: runbook.EventStepStarted, Step: "a"}); err == nil {
		t.Fatal("append with a cancelled context succeeded")
	}
	if evs, _ := s.Events(ctx, run.ID, 0, 0); len(evs) != 0 {
		t.Fatalf("%d events written with a cancelled context", len(evs))
	}
}
