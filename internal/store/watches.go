package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Watch is the watch after a successful run: until Until, the guards in
// Guards (JSON the engine owns) are evaluated every interval against
// Prometheus.
type Watch struct {
	RunID      string
	Until      time.Time
	NextAt     time.Time
	Prometheus string
	Guards     string
}

// AddWatch starts watching a run (replacing a watch it had).
func (s *Store) AddWatch(ctx context.Context, w Watch) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO watches (run_id, until_at, next_at, prometheus, guards) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (run_id) DO UPDATE SET until_at = $2, next_at = $3, prometheus = $4, guards = $5, claimed_by = '', claimed_until = 0`,
		w.RunID, micros(w.Until), micros(w.NextAt), w.Prometheus, w.Guards)
	if err != nil {
		return fmt.Errorf("watch run %s: %w", w.RunID, mapError(err))
	}
	return nil
}

// ClaimWatches leases up to limit watches due at now to owner for lease.
func (s *Store) ClaimWatches(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]Watch, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("claim watches: %w", mapError(err))
	}
	defer tx.Rollback()
	q := `SELECT run_id, until_at, next_at, prometheus, guards FROM watches WHERE next_at <= $1 AND claimed_until < $1 ORDER BY next_at LIMIT $2`
	if s.dialect == DialectPostgres {
		q += ` FOR UPDATE SKIP LOCKED`
	}
	rows, err := tx.QueryContext(ctx, q, micros(now), limit)
	if err != nil {
		return nil, fmt.Errorf("claim watches: %w", mapError(err))
	}
	var out []Watch
	for rows.Next() {
		var w Watch
		var until, next int64
		if err := rows.Scan(&w.RunID, &until, &next, &w.Prometheus, &w.Guards); err != nil {
			rows.Close()
			return nil, fmt.Errorf("claim watches: %w", err)
		}
		w.Until, w.NextAt = fromMicros(until), fromMicros(next)
		out = append(out, w)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("claim watches: %w", mapError(err))
	}
	for _, w := range out {
		if _, err := tx.ExecContext(ctx, `UPDATE watches SET claimed_by = $2, claimed_until = $3 WHERE run_id = $1`,
			w.RunID, owner, micros(now.Add(lease))); err != nil {
			return nil, fmt.Errorf("claim watch %s: %w", w.RunID, mapError(err))
		}
	}
	return out, mapError(tx.Commit())
}

// UpdateWatch records a checked watch's next check and guard state, if
// owner still holds it.
func (s *Store) UpdateWatch(ctx context.Context, owner string, w Watch) error {
	res, err := s.db.ExecContext(ctx, `UPDATE watches SET next_at = $3, guards = $4, claimed_by = '', claimed_until = 0
		WHERE run_id = $1 AND claimed_by = $2`, w.RunID, owner, micros(w.NextAt), w.Guards)
	if err != nil {
		return fmt.Errorf("update watch %s: %w", w.RunID, mapError(err))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("update watch %s: %w", w.RunID, ErrLeaseLost)
	}
	return nil
}

// EndWatch removes a run's watch; it reports whether there was one.
func (s *Store) EndWatch(ctx context.Context, runID string) (bool, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM watches WHERE run_id = $1`, runID)
	if err != nil {
		return false, fmt.Errorf("end watch %s: %w", runID, mapError(err))
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// GetWatch returns a run's watch, or ErrNotFound.
func (s *Store) GetWatch(ctx context.Context, runID string) (Watch, error) {
	var w Watch
	var until, next int64
	err := s.db.QueryRowContext(ctx, `SELECT run_id, until_at, next_at, prometheus, guards FROM watches WHERE run_id = $1`, runID).
		Scan(&w.RunID, &until, &next, &w.Prometheus, &w.Guards)
	if errors.Is(err, sql.ErrNoRows) {
		return w, fmt.Errorf("watch of run %s: %w", runID, ErrNotFound)
	}
	if err != nil {
		return w, fmt.Errorf("watch of run %s: %w", runID, mapError(err))
	}
	w.Until, w.NextAt = fromMicros(until), fromMicros(next)
	return w, nil
}
