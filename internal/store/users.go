package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/opsbook/opsbook/internal/auth"
)

// User is a person or a service identity that can act on the server.
type User struct {
	ID        int64     `json:"id"`
	Name      string    `json:"name"`
	Display   string    `json:"display,omitempty"`
	Service   bool      `json:"service"` // a service identity: no password, acts for triggers and automation
	Disabled  bool      `json:"disabled"`
	CreatedAt time.Time `json:"created_at"`
	Teams     []string  `json:"teams"`
	// PasswordHash is the argon2id PHC string; never serialised.
	PasswordHash string `json:"-"`
}

const userColumns = `id, name, display, password, service, disabled, created_at`

// CreateUser adds a user and sets u.ID. A taken name is ErrConflict.
func (s *Store) CreateUser(ctx context.Context, u *User) error {
	if u.Name == "" {
		return fmt.Errorf("create user: %w: name is empty", ErrInvalid)
	}
	if u.CreatedAt.IsZero() {
		u.CreatedAt = time.Now()
	}
	u.CreatedAt = truncate(u.CreatedAt)
	err := s.db.QueryRowContext(ctx, `INSERT INTO users (name, display, password, service, disabled, created_at)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
		u.Name, u.Display, u.PasswordHash, u.Service, u.Disabled, micros(u.CreatedAt)).Scan(&u.ID)
	if err != nil {
		return fmt.Errorf("create user %s: %w", u.Name, mapError(err))
	}
	return nil
}

// GetUser returns the user with this id.
func (s *Store) GetUser(ctx context.Context, id int64) (User, error) {
	return s.getUser(ctx, `id = $1`, id)
}

// GetUserByName returns the user with this name.
func (s *Store) GetUserByName(ctx context.Context, name string) (User, error) {
	return s.getUser(ctx, `name = $1`, name)
}

func (s *Store) getUser(ctx context.Context, where string, arg any) (User, error) {
	u, err := scanUser(s.db.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE `+where, arg))
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, fmt.Errorf("user %v: %w", arg, ErrNotFound)
	}
	if err != nil {
		return User{}, fmt.Errorf("get user %v: %w", arg, mapError(err))
	}
	if u.Teams, err = s.userTeams(ctx, u.ID); err != nil {
		return User{}, err
	}
	return u, nil
}

// ListUsers returns every user by name, with their teams.
func (s *Store) ListUsers(ctx context.Context) ([]User, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+userColumns+` FROM users ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", mapError(err))
	}
	users := []User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("list users: %w", err)
		}
		users = append(users, u)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list users: %w", mapError(err))
	}
	for i := range users {
		if users[i].Teams, err = s.userTeams(ctx, users[i].ID); err != nil {
			return nil, err
		}
	}
	return users, nil
}

// CountUsers returns how many users exist (first start creates the admin).
func (s *Store) CountUsers(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM users`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count users: %w", mapError(err))
	}
	return n, nil
}

// UpdateUser writes a user's display name, password hash and disabled flag.
func (s *Store) UpdateUser(ctx context.Context, u User) error {
	res, err := s.db.ExecContext(ctx, `UPDATE users SET display = $2, password = $3, disabled = $4 WHERE id = $1`,
		u.ID, u.Display, u.PasswordHash, u.Disabled)
	return checkAffected(res, err, "update user "+u.Name)
}

// DeleteUser removes a user with their sessions, API keys and memberships.
func (s *Store) DeleteUser(ctx context.Context, id int64) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM users WHERE id = $1`, id)
	return checkAffected(res, err, fmt.Sprintf("delete user %d", id))
}

func (s *Store) userTeams(ctx context.Context, userID int64) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT t.name FROM teams t JOIN team_members m ON m.team_id = t.id
		WHERE m.user_id = $1 ORDER BY t.name`, userID)
	if err != nil {
		return nil, fmt.Errorf("teams of user %d: %w", userID, mapError(err))
	}
	defer rows.Close()
	teams := []string{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, fmt.Errorf("teams of user %d: %w", userID, err)
		}
		teams = append(teams, name)
	}
	return teams, rows.Err()
}

// Principal returns who the user is to the permission model: their teams
// and every grant of those teams. A disabled user is ErrNotFound.
func (s *Store) Principal(ctx context.Context, userID int64, via auth.PrincipalKind) (*auth.Principal, error) {
	u, err := s.GetUser(ctx, userID)
	if err != nil {
		return nil, err
	}
	if u.Disabled {
		return nil, fmt.Errorf("user %s is disabled: %w", u.Name, ErrNotFound)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT g.id, t.name, g.permission, g.projects, g.environments
		FROM grants g JOIN teams t ON t.id = g.team_id JOIN team_members m ON m.team_id = g.team_id
		WHERE m.user_id = $1 ORDER BY g.id`, userID)
	if err != nil {
		return nil, fmt.Errorf("grants of user %s: %w", u.Name, mapError(err))
	}
	defer rows.Close()
	p := &auth.Principal{UserID: u.ID, Name: u.Name, Service: u.Service, Via: via, Teams: u.Teams, Grants: []auth.Grant{}}
	for rows.Next() {
		g, err := scanGrant(rows)
		if err != nil {
			return nil, fmt.Errorf("grants of user %s: %w", u.Name, err)
		}
		p.Grants = append(p.Grants, g)
	}
	return p, rows.Err()
}

func scanUser(row rowScanner) (User, error) {
	var u User
	var created int64
	err := row.Scan(&u.ID, &u.Name, &u.Display, &u.PasswordHash, &u.Service, &u.Disabled, &created)
	u.CreatedAt = fromMicros(created)
	return u, err
}

func checkAffected(res sql.Result, err error, what string) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, mapError(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return nil
}

func encodeList(l []string) string {
	if len(l) == 0 {
		return ""
	}
	b, _ := json.Marshal(l) // strings only: cannot fail
	return string(b)
}

func decodeList(s string) ([]string, error) {
	if s == "" {
		return []string{}, nil
	}
	var l []string
	err := json.Unmarshal([]byte(s), &l)
	return l, err
}
