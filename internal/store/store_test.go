package store_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/store"
	"github.com/opsbook/opsbook/internal/store/storetest"
)

// Several processes (here goroutines with their own Store) opening a fresh
// database at once must not trip over each other's migrations.
func TestOpenConcurrently(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			dsn := storetest.DSN(t, dialect)
			ctx := context.Background()
			const openers = 4
			stores := make([]*store.Store, openers)
			errs := make([]error, openers)
			var wg sync.WaitGroup
			for i := range openers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					stores[i], errs[i] = store.Open(ctx, dsn)
				}()
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("Open %d: %v", i, err)
				}
				defer stores[i].Close()
			}
			r := runbook.Run{Runbook: "a.md"}
			if err := stores[0].CreateRun(ctx, &r); err != nil {
				t.Fatal(err)
			}
			if _, err := stores[openers-1].GetRun(ctx, r.ID); err != nil {
				t.Fatalf("a run created through one store is not seen through another: %v", err)
			}
			if got := stores[0].Dialect(); got != dialect {
				t.Errorf("Dialect() = %q, want %q", got, dialect)
			}
		})
	}
}

func TestOpenSQLite(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	tests := []struct {
		name     string
		dsn      string
		wantPath string
		wantErr  bool
	}{
		{"plain path, directories created", filepath.Join(dir, "a", "b", "state.db"), filepath.Join(dir, "a", "b", "state.db"), false},
		{"sqlite: prefix", "sqlite:" + filepath.Join(dir, "c.db"), filepath.Join(dir, "c.db"), false},
		{"empty", "sqlite:", "", true},
		{"query characters", filepath.Join(dir, "d.db?mode=ro"), "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := store.Open(ctx, tt.dsn)
			if tt.wantErr {
				if err == nil {
					s.Close()
					t.Fatalf("Open(%q) succeeded, want an error", tt.dsn)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if s.Path() != tt.wantPath || s.Dialect() != store.DialectSQLite {
				t.Errorf("Path() = %q, Dialect() = %q; want %q, sqlite", s.Path(), s.Dialect(), tt.wantPath)
			}
			fi, err := os.Stat(s.Path())
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("database file mode %v, want 0600: run logs are private", fi.Mode().Perm())
			}
		})
	}
}

func TestOpenPostgresUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := store.Open(ctx, "postgres://opsbook:hunter2@127.0.0.1:1/opsbook?sslmode=disable&connect_timeout=2")
	if err == nil {
		t.Fatal("Open of an unreachable server succeeded")
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error %q shows the password", err)
	}
}

// A new SQLite store gets 16 KiB pages (a quarter of the system calls per
// byte of output); a store made before keeps its 4 KiB pages, and both
// record output and read it back. Fault: the page size pragma run after
// the switch to WAL (the DSN's pragmas run in alphabetical order), where
// SQLite ignores it without an error.
func TestSQLitePageSize(t *testing.T) {
	ctx := context.Background()
	pageSize := func(path string) int {
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var n int
		if err := db.QueryRowContext(ctx, "PRAGMA page_size").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	old := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", old)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"PRAGMA page_size = 4096", "PRAGMA journal_mode = WAL", "CREATE TABLE made_before (x)"} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	for _, tc := range []struct {
		path string
		want int
	}{{filepath.Join(t.TempDir(), "new.db"), 16384}, {old, 4096}} {
		s, err := store.Open(ctx, tc.path)
		if err != nil {
			t.Fatal(err)
		}
		r := runbook.Run{Runbook: "a.md"}
		if err := s.CreateRun(ctx, &r); err != nil {
			t.Fatal(err)
		}
		text := strings.Repeat("0123456789abcdef", 5000) // spans pages of either size
		if _, err := s.AppendEvents(ctx, r.ID, runbook.Event{Type: runbook.EventStepOutput, Step: "s", Stream: "stdout", Text: text}); err != nil {
			t.Fatal(err)
		}
		evs, err := s.Events(ctx, r.ID, 0, 0)
		if err != nil || len(evs) != 1 || evs[0].Text != text {
			t.Fatalf("%s: output read back: %d events, %v", tc.path, len(evs), err)
		}
		s.Close()
		if got := pageSize(tc.path); got != tc.want {
			t.Errorf("%s: page size %d, want %d", filepath.Base(tc.path), got, tc.want)
		}
	}
}

// Output pouring into a SQLite store is checkpointed in the background
// (store/checkpoint.go): the database file grows while the write-ahead
// log is still below the appender's own autocheckpoint (1,000 pages, 16
// MiB), and the log stays bounded over far more output than that, also
// when the background copy is slow.
// (Output appended one 64 KiB event per transaction fills the log twice
// as fast as the output: a MiB per append is what the recorder does.)
// Faults: the checkpointer never started, or never woken; the log left
// to grow with the output (the suite once saw 93 MiB for 105 under load
// before the appender's own bounding checkpoint).
func TestSQLiteOutputCheckpointsInTheBackground(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	s, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r := runbook.Run{Runbook: "a.md"}
	if err := s.CreateRun(ctx, &r); err != nil {
		t.Fatal(err)
	}
	chunk := strings.Repeat("0123456789abcdef", 4096) // 64 KiB
	// A MiB per append, as the recorder batches output pouring in.
	batch := make([]runbook.Event, 16)
	appendMiB := func(mib int) {
		for range mib {
			for i := range batch {
				batch[i] = runbook.Event{Type: runbook.EventStepOutput, Step: "s", Stream: "stdout", Text: chunk}
			}
			if _, err := s.AppendEvents(ctx, r.ID, batch...); err != nil {
				t.Fatal(err)
			}
		}
	}
	size := func(p string) int64 {
		fi, err := os.Stat(p)
		if err != nil {
			return 0
		}
		return fi.Size()
	}
	appendMiB(5)
	deadline := time.Now().Add(20 * time.Second) // a hang detector, not a timing
	for size(path) < 4<<20 {
		if time.Now().After(deadline) {
			t.Fatalf("after 5 MiB of output the database file is %d bytes and the log %d: nothing checkpointed it", size(path), size(path+"-wal"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A loaded machine: the background copy is slow and never finds the
	// log at rest, and holds the checkpoint lock whenever the appender's
	// autocheckpoint tries (here: the autocheckpoint is off).
	store.SetCheckpointDelay(t, 100*time.Millisecond)
	if err := store.ExecOnAppendConnForTest(s, ctx, "PRAGMA wal_autocheckpoint = 0"); err != nil {
		t.Fatal(err)
	}
	var maxLog int64
	for range 100 {
		appendMiB(1)
		maxLog = max(maxLog, size(path+"-wal"))
	}
	if maxLog > 48<<20 {
		t.Errorf("the log reached %d MiB over 105 MiB of output", maxLog>>20)
	}
	evs, err := s.Events(ctx, r.ID, 100, 1)
	if err != nil || len(evs) != 1 || evs[0].Text != chunk {
		t.Fatalf("output read back: %d events, %v", len(evs), err)
	}
}
