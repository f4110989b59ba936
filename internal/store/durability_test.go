package store

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/opsbook/opsbook/internal/runbook"
)

// The durability split documented at sqlitePragmas: a batch with an event
// that must survive power loss commits with synchronous=FULL (an fsync of
// the WAL per commit), a batch of results only with NORMAL, on the one
// append connection, whichever level the previous append left it at. The
// fault this catches is a step start committed without an fsync: after a
// result-only batch switched the connection to NORMAL, a control event
// must switch it back before its commit.
func TestSQLiteSynchronousLevels(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "d.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if level := synchronousOf(t, s.db); level != 2 {
		t.Errorf("the main pool's synchronous = %d, want 2 (FULL)", level)
	}
	run := runbook.Run{Runbook: "rb.md"}
	if err := s.CreateRun(ctx, &run); err != nil {
		t.Fatal(err)
	}
	output := runbook.Event{Type: runbook.EventStepOutput, Step: "a", Stream: "stdout", Text: "x"}
	started := runbook.Event{Type: runbook.EventStepStarted, Step: "a", Attempt: 1}
	finished := runbook.Event{Type: runbook.EventStepFinished, Step: "a", Data: map[string]string{"status": "succeeded"}}
	steps := []struct {
		name string
		evs  []runbook.Event
		want int // PRAGMA synchronous: 1 NORMAL, 2 FULL
	}{
		{"step started", []runbook.Event{started}, 2},
		{"output", []runbook.Event{output, output}, 1},
		{"step started after output", []runbook.Event{started}, 2},
		{"step finished", []runbook.Event{finished}, 1},
		{"results with a control event", []runbook.Event{output, started}, 2},
		// The engine holds a step's finish for the next step's start: one
		// commit, and the fsync before the spawn covers both.
		{"step finished with the next step's start", []runbook.Event{finished, started}, 2},
	}
	for _, st := range steps {
		if _, err := s.AppendEvents(ctx, run.ID, st.evs...); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		// The pool has one connection: this is the level the commit used.
		if level := synchronousOf(t, s.appendDB); level != st.want {
			t.Errorf("%s: committed with synchronous = %d, want %d", st.name, level, st.want)
		}
	}
}

func synchronousOf(t *testing.T, db *sql.DB) int {
	t.Helper()
	var level int
	if err := db.QueryRow(`PRAGMA synchronous`).Scan(&level); err != nil {
		t.Fatal(err)
	}
	var mode string
	if err := db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}
	return level
}

func TestFsyncedEvent(t *testing.T) {
	tests := []struct {
		typ  runbook.EventType
		want bool
	}{
		{runbook.EventStepStarted, true}, // the command is spawned next
		{runbook.EventRunStarted, true},
		{runbook.EventGateDecided, true},
		{runbook.EventAskAnswered, true},
		{runbook.EventManualDone, true},
		{runbook.EventRollbackStart, true},
		{runbook.EventRunFinished, true},
		{runbook.EventStepOutput, false},
		{runbook.EventStepVerified, false},
		{runbook.EventStepFinished, false},
		{runbook.EventStepRetry, false},
	}
	for _, tt := range tests {
		t.Run(string(tt.typ), func(t *testing.T) {
			if got := fsyncedEvent(tt.typ); got != tt.want {
				t.Errorf("fsyncedEvent(%s) = %v, want %v", tt.typ, got, tt.want)
			}
		})
	}
}
