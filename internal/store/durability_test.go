package store

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/opsbook/opsbook/internal/runbook"
)

// The durability split documented at sqlitePragmas: control events commit
// through a pool that fsyncs every commit, output through one that does not.
func TestSQLiteSynchronousLevels(t *testing.T) {
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "d.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tests := []struct {
		name string
		db   func() *sql.DB
		want int // PRAGMA synchronous: 1 NORMAL, 2 FULL
	}{
		{"control events", func() *sql.DB { return s.db }, 2},
		{"output events", func() *sql.DB { return s.outputDB }, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := tt.db()
			var level int
			if err := db.QueryRow(`PRAGMA synchronous`).Scan(&level); err != nil {
				t.Fatal(err)
			}
			if level != tt.want {
				t.Errorf("synchronous = %d, want %d", level, tt.want)
			}
			var mode string
			if err := db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
				t.Errorf("journal_mode = %q, %v; want wal", mode, err)
			}
		})
	}
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
