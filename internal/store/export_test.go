package store

import (
	"context"
	"database/sql"
	"time"
)

// ExecForTest runs raw SQL against the store, for tests that tamper with
// rows behind the store's back (the audit chain's tamper test).
func ExecForTest(s *Store, ctx context.Context, query string, args ...any) (sql.Result, error) {
	return s.db.ExecContext(ctx, query, args...)
}

// ProcessStartTicks exposes processStartTicks to the lease tests.
var ProcessStartTicks = processStartTicks

// SetCheckpointDelay makes every background checkpoint last d longer (a
// slow disk) until the test ends.
func SetCheckpointDelay(t interface{ Cleanup(func()) }, d time.Duration) {
	checkpointDelay.Store(int64(d))
	t.Cleanup(func() { checkpointDelay.Store(0) })
}

// ExecOnAppendConnForTest runs a statement on the SQLite append
// connection (a pragma the appends then run under).
func ExecOnAppendConnForTest(s *Store, ctx context.Context, query string) error {
	s.appendMu.Lock()
	defer s.appendMu.Unlock()
	_, err := s.appendDB.ExecContext(ctx, query)
	return err
}
