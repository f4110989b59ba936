package store

import (
	"context"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Open skips goose when its table records every migration as applied.
// Fault: a store one migration behind (its last migration rolled back as
// goose does it, its row deleted: what an older binary would have left)
// must still be migrated on Open, not taken for up to date.
func TestOpenMigratesAStoreBehind(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	dir, _ := fs.Sub(migrationFiles, "migrations/sqlite")
	names, _ := fs.Glob(dir, "*.sql")
	slices.Sort(names)
	last := names[len(names)-1]
	version, _ := strconv.ParseInt(strings.SplitN(last, "_", 2)[0], 10, 64)
	src, _ := fs.ReadFile(dir, last)
	_, down, ok := strings.Cut(string(src), "-- +goose Down")
	if !ok {
		t.Fatalf("%s has no Down section", last)
	}
	if !s.sqliteUpToDate(ctx, dir) {
		t.Fatal("a freshly migrated store is not up to date")
	}
	for _, undo := range []string{`DELETE FROM goose_db_version WHERE version_id = $1`} {
		if _, err := s.db.ExecContext(ctx, down); err != nil {
			t.Fatalf("roll back %s: %v", last, err)
		}
		if _, err := s.db.ExecContext(ctx, undo, version); err != nil {
			t.Fatal(err)
		}
		if s.sqliteUpToDate(ctx, dir) {
			t.Fatalf("after %q the store still looks up to date", undo)
		}
		s.Close()
		if s, err = Open(ctx, path); err != nil {
			t.Fatalf("reopen after %q: %v", undo, err)
		}
		if !s.sqliteUpToDate(ctx, dir) {
			t.Fatalf("after %q, Open did not apply %s again", undo, last)
		}
	}
	s.Close()
}
