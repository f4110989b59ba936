package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// APIKey is a key a user (or a service identity) authenticates with. Only
// its SHA-256 hash is stored; Hint is its first characters.
type APIKey struct {
	ID         int64     `json:"id"`
	UserID     int64     `json:"user_id"`
	User       string    `json:"user"`
	Name       string    `json:"name"`
	Hint       string    `json:"hint"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
	ExpiresAt  time.Time `json:"expires_at,omitzero"`
	KeyHash    string    `json:"-"`
}

// CreateAPIKey stores a key's hash and sets k.ID.
func (s *Store) CreateAPIKey(ctx context.Context, k *APIKey) error {
	if k.CreatedAt.IsZero() {
		k.CreatedAt = time.Now()
	}
	k.CreatedAt = truncate(k.CreatedAt)
	err := s.db.QueryRowContext(ctx, `INSERT INTO api_keys (user_id, name, key_hash, hint, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`, k.UserID, k.Name, k.KeyHash, k.Hint, micros(k.CreatedAt), nullMicros(k.ExpiresAt)).Scan(&k.ID)
	if err != nil {
		return fmt.Errorf("create API key %s: %w", k.Name, mapError(err))
	}
	return nil
}

// APIKeyByHash returns the unexpired key with this hash and records its use.
func (s *Store) APIKeyByHash(ctx context.Context, hash string, now time.Time) (APIKey, error) {
	k, err := scanAPIKey(s.db.QueryRowContext(ctx, `SELECT `+apiKeyColumns+` FROM api_keys k JOIN users u ON u.id = k.user_id
		WHERE k.key_hash = $1 AND (k.expires_at IS NULL OR k.expires_at > $2)`, hash, micros(now)))
	if errors.Is(err, sql.ErrNoRows) {
		return APIKey{}, fmt.Errorf("API key: %w (revoked, expired or mistyped)", ErrNotFound)
	}
	if err != nil {
		return APIKey{}, fmt.Errorf("get API key: %w", mapError(err))
	}
	// Record use at most once a minute: a busy key must not turn every read into a write.
	if now.Sub(k.LastUsedAt) > time.Minute {
		if _, err := s.db.ExecContext(ctx, `UPDATE api_keys SET last_used_at = $2 WHERE id = $1`, k.ID, micros(now)); err != nil {
			return APIKey{}, fmt.Errorf("record API key use: %w", mapError(err))
		}
	}
	return k, nil
}

// ListAPIKeys returns the keys of one user, or of everyone when userID is 0.
func (s *Store) ListAPIKeys(ctx context.Context, userID int64) ([]APIKey, error) {
	q := `SELECT ` + apiKeyColumns + ` FROM api_keys k JOIN users u ON u.id = k.user_id`
	var args []any
	if userID != 0 {
		q += ` WHERE k.user_id = $1`
		args = append(args, userID)
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY k.id`, args...)
	if err != nil {
		return nil, fmt.Errorf("list API keys: %w", mapError(err))
	}
	defer rows.Close()
	keys := []APIKey{}
	for rows.Next() {
		k, err := scanAPIKey(rows)
		if err != nil {
			return nil, fmt.Errorf("list API keys: %w", err)
		}
		keys = append(keys, k)
	}
	return keys, rows.Err()
}

// GetAPIKey returns one key by id.
func (s *Store) GetAPIKey(ctx context.Context, id int64) (APIKey, error) {
	k, err := scanAPIKey(s.db.QueryRowContext(ctx, `SELECT `+apiKeyColumns+` FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return APIKey{}, fmt.Errorf("API key %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return APIKey{}, fmt.Errorf("get API key %d: %w", id, mapError(err))
	}
	return k, nil
}

// DeleteAPIKey revokes a key.
func (s *Store) DeleteAPIKey(ctx context.Context, id int64) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM api_keys WHERE id = $1`, id)
	return checkAffected(res, err, fmt.Sprintf("delete API key %d", id))
}

const apiKeyColumns = `k.id, k.user_id, u.name, k.name, k.hint, k.key_hash, k.created_at, k.last_used_at, k.expires_at`

func scanAPIKey(row rowScanner) (APIKey, error) {
	var k APIKey
	var created int64
	var used, expires sql.NullInt64
	if err := row.Scan(&k.ID, &k.UserID, &k.User, &k.Name, &k.Hint, &k.KeyHash, &created, &used, &expires); err != nil {
		return APIKey{}, err
	}
	k.CreatedAt = fromMicros(created)
	if used.Valid {
		k.LastUsedAt = fromMicros(used.Int64)
	}
	if expires.Valid {
		k.ExpiresAt = fromMicros(expires.Int64)
	}
	return k, nil
}
