// Package storetest runs a test against every store dialect: SQLite in a
// temporary directory and PostgreSQL on the pgtest cluster. A package using
// it needs pgtest.Run in its TestMain.
package storetest

import (
	"context"
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
