package store

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
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
