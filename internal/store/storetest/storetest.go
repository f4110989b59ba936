// Package storetest runs a test against every store dialect: SQLite in a
// temporary directory and PostgreSQL on the pgtest cluster. A package using
// it needs pgtest.Run in its TestMain.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/opsbook/opsbook/internal/store"
	"github.com/opsbook/opsbook/internal/store/pgtest"
)

// Dialects lists the dialects ForEachDialect runs, in order.
var Dialects = []string{store.DialectSQLite, store.DialectPostgres}

// DSN returns the data source of a fresh, empty store of the dialect.
func DSN(t testing.TB, dialect string) string {
	t.Helper()
	switch dialect {
	case store.DialectSQLite:
		return "sqlite:" + filepath.Join(t.TempDir(), "opsbook.db")
	case store.DialectPostgres:
		return pgtest.DSN(t)
	}
	t.Fatalf("storetest: unknown dialect %q", dialect)
	return ""
}

// Open opens a fresh store of the dialect, closed when t ends.
func Open(t testing.TB, dialect string) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), DSN(t, dialect))
	if err != nil {
		t.Fatalf("open %s store: %v", dialect, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// ForEachDialect runs fn as a subtest per dialect, named after it, each
// with a fresh store.
func ForEachDialect(t *testing.T, fn func(t *testing.T, s *store.Store)) {
	t.Helper()
	for _, d := range Dialects {
		t.Run(d, func(t *testing.T) {
			fn(t, Open(t, d))
		})
	}
}

// FilesContaining returns the database files holding needle as plain
// bytes: for SQLite the database file and its -wal and -shm files, for
// PostgreSQL every file of the test cluster (see pgtest.FlushedDataDir for
// what that can and cannot show). Tests use it to prove a secret never
// reached disk; it fails the test if it cannot read the files.
func FilesContaining(t testing.TB, s *store.Store, needle []byte) []string {
	t.Helper()
	var files []string
	switch s.Dialect() {
	case store.DialectSQLite:
		for _, suffix := range []string{"", "-wal", "-shm"} {
			files = append(files, s.Path()+suffix)
		}
	case store.DialectPostgres:
		err := filepath.WalkDir(pgtest.FlushedDataDir(t), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Type().IsRegular() {
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("storetest: %v", err)
		}
	}
	var found []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if errors.Is(err, fs.ErrNotExist) {
			continue // no -wal or -shm after a clean close
		}
		if err != nil {
			t.Fatalf("storetest: %v", err)
		}
		if bytes.Contains(b, needle) {
			found = append(found, f)
		}
	}
	return found
}
