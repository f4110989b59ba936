package store

import (
	"context"
	"database/sql"
)

// ExecForTest runs raw SQL against the store, for tests that tamper with
// rows behind the store's back (the audit chain's tamper test).
func ExecForTest(s *Store, ctx context.Context, query string, args ...any) (sql.Result, error) {
	return s.db.ExecContext(ctx, query, args...)
}

// ProcessStartTicks exposes processStartTicks to the lease tests.
var ProcessStartTicks = processStartTicks
