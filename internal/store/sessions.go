package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Session is a signed-in browser. Only the hash of its token is stored.
type Session struct {
	TokenHash string
	UserID    int64
	CSRF      string
	Remote    string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// CreateSession records a new session.
func (s *Store) CreateSession(ctx context.Context, sess Session) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO sessions (token_hash, user_id, csrf, remote, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, sess.TokenHash, sess.UserID, sess.CSRF, sess.Remote, micros(sess.CreatedAt), micros(sess.ExpiresAt))
	if err != nil {
		return fmt.Errorf("create session: %w", mapError(err))
	}
	return nil
}

// GetSession returns the unexpired session with this token hash.
func (s *Store) GetSession(ctx context.Context, tokenHash string, now time.Time) (Session, error) {
	sess := Session{TokenHash: tokenHash}
	var created, expires int64
	err := s.db.QueryRowContext(ctx, `SELECT user_id, csrf, remote, created_at, expires_at FROM sessions
		WHERE token_hash = $1 AND expires_at > $2`, tokenHash, micros(now)).Scan(&sess.UserID, &sess.CSRF, &sess.Remote, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, fmt.Errorf("session: %w (expired or signed out)", ErrNotFound)
	}
	if err != nil {
		return Session{}, fmt.Errorf("get session: %w", mapError(err))
	}
	sess.CreatedAt, sess.ExpiresAt = fromMicros(created), fromMicros(expires)
	return sess, nil
}

// DeleteSession signs a session out.
func (s *Store) DeleteSession(ctx context.Context, tokenHash string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE token_hash = $1`, tokenHash); err != nil {
		return fmt.Errorf("delete session: %w", mapError(err))
	}
	return nil
}

// DeleteExpiredSessions removes sessions that expired before now.
func (s *Store) DeleteExpiredSessions(ctx context.Context, now time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at <= $1`, micros(now))
	if err != nil {
		return 0, fmt.Errorf("delete expired sessions: %w", mapError(err))
	}
	return res.RowsAffected()
}

// DeleteUserSessions signs every session of a user out (a password reset).
func (s *Store) DeleteUserSessions(ctx context.Context, userID int64) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = $1`, userID); err != nil {
		return fmt.Errorf("delete sessions of user %d: %w", userID, mapError(err))
	}
	return nil
}
