package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// UserByIdentity returns the user linked to an external identity (an OIDC
// issuer and subject); ErrNotFound when none is.
func (s *Store) UserByIdentity(ctx context.Context, issuer, subject string) (User, error) {
	var id int64
	err := s.db.QueryRowContext(ctx, `SELECT user_id FROM user_identities WHERE issuer = $1 AND subject = $2`,
		issuer, subject).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, fmt.Errorf("identity %s of %s: %w", subject, issuer, ErrNotFound)
	}
	if err != nil {
		return User{}, fmt.Errorf("find identity %s of %s: %w", subject, issuer, mapError(err))
	}
	return s.GetUser(ctx, id)
}

// CreateIdentityUser adds u (without a password) linked to the external
// identity, in one transaction, and sets u.ID. A taken name is
// ErrConflict and creates nothing, so the caller can try another name.
func (s *Store) CreateIdentityUser(ctx context.Context, u *User, issuer, subject string) error {
	if u.Name == "" || issuer == "" || subject == "" {
		return fmt.Errorf("create user from identity: %w: name, issuer and subject are required", ErrInvalid)
	}
	if u.CreatedAt.IsZero() {
		u.CreatedAt = time.Now()
	}
	u.CreatedAt = truncate(u.CreatedAt)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("create user %s: %w", u.Name, mapError(err))
	}
	defer tx.Rollback()
	if err := tx.QueryRowContext(ctx, `INSERT INTO users (name, display, password, service, disabled, created_at)
		VALUES ($1, $2, '', $3, $4, $5) RETURNING id`,
		u.Name, u.Display, false, u.Disabled, micros(u.CreatedAt)).Scan(&u.ID); err != nil {
		return fmt.Errorf("create user %s: %w", u.Name, mapError(err))
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO user_identities (issuer, subject, user_id) VALUES ($1, $2, $3)`,
		issuer, subject, u.ID); err != nil {
		return fmt.Errorf("link user %s to %s of %s: %w", u.Name, subject, issuer, mapError(err))
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("create user %s: %w", u.Name, mapError(err))
	}
	u.PasswordHash, u.Service, u.Teams = "", false, []string{}
	return nil
}
