package store

import (
	"context"
	"fmt"

	"github.com/opsbook/opsbook/internal/runbook"
)

// CountRunsByStatus returns how many runs there are in each status
// (for the server's /metrics).
func (s *Store) CountRunsByStatus(ctx context.Context) (map[runbook.RunStatus]int64, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT status, COUNT(*) FROM runs GROUP BY status`)
	if err != nil {
		return nil, fmt.Errorf("count runs: %w", mapError(err))
	}
	defer rows.Close()
	out := map[runbook.RunStatus]int64{}
	for rows.Next() {
		var st string
		var n int64
		if err := rows.Scan(&st, &n); err != nil {
			return nil, fmt.Errorf("count runs: %w", err)
		}
		out[runbook.RunStatus(st)] = n
	}
	return out, rows.Err()
}

// Ping checks that the database answers (the server's /readyz).
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// RunsBeyond returns the ids of finished runs of a runbook in an
// environment other than the newest keep runs (retention). Running,
// waiting and interrupted runs are never returned.
func (s *Store) RunsBeyond(ctx context.Context, runbookPath, env string, keep int) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, status FROM runs WHERE runbook = $1 AND environment = $2
		ORDER BY created_at DESC, id DESC`, runbookPath, env)
	if err != nil {
		return nil, fmt.Errorf("runs of %s in %s: %w", runbookPath, env, mapError(err))
	}
	defer rows.Close()
	var out []string
	n := 0
	for rows.Next() {
		var id, st string
		if err := rows.Scan(&id, &st); err != nil {
			return nil, fmt.Errorf("runs of %s in %s: %w", runbookPath, env, err)
		}
		n++
		if n > keep && runbook.RunStatus(st).Finished() {
			out = append(out, id)
		}
	}
	return out, rows.Err()
}

// RunGroups lists every (runbook, environment) pair that has runs.
func (s *Store) RunGroups(ctx context.Context) ([][2]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT runbook, environment FROM runs ORDER BY runbook, environment`)
	if err != nil {
		return nil, fmt.Errorf("list run groups: %w", mapError(err))
	}
	defer rows.Close()
	var out [][2]string
	for rows.Next() {
		var g [2]string
		if err := rows.Scan(&g[0], &g[1]); err != nil {
			return nil, fmt.Errorf("list run groups: %w", err)
		}
		out = append(out, g)
	}
	return out, rows.Err()
}
