package store

import (
	"context"
	"fmt"
)

// PutRunSecrets stores a run's secret parameter values, already sealed by
// internal/secret, so a resumed run gets them back.
func (s *Store) PutRunSecrets(ctx context.Context, runID string, sealed map[string]string) error {
	for name, v := range sealed {
		if _, err := s.db.ExecContext(ctx, `INSERT INTO run_secrets (run_id, name, sealed) VALUES ($1, $2, $3)
			ON CONFLICT (run_id, name) DO UPDATE SET sealed = excluded.sealed`, runID, name, v); err != nil {
			return fmt.Errorf("store secret parameter %s of run %s: %w", name, runID, mapError(err))
		}
	}
	return nil
}

// RunSecrets returns a run's sealed secret parameter values by name.
func (s *Store) RunSecrets(ctx context.Context, runID string) (map[string]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, sealed FROM run_secrets WHERE run_id = $1`, runID)
	if err != nil {
		return nil, fmt.Errorf("secret parameters of run %s: %w", runID, mapError(err))
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var name, v string
		if err := rows.Scan(&name, &v); err != nil {
			return nil, fmt.Errorf("secret parameters of run %s: %w", runID, err)
		}
		out[name] = v
	}
	return out, rows.Err()
}
