package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/opsbook/opsbook/internal/auth"
)

// Team is a group of users that grants are given to.
type Team struct {
	ID        int64        `json:"id"`
	Name      string       `json:"name"`
	Members   []string     `json:"members"`
	Grants    []auth.Grant `json:"grants"`
	CreatedAt time.Time    `json:"created_at"`
}

// CreateTeam adds a team. A taken name is ErrConflict.
func (s *Store) CreateTeam(ctx context.Context, name string) (Team, error) {
	if name == "" {
		return Team{}, fmt.Errorf("create team: %w: name is empty", ErrInvalid)
	}
	t := Team{Name: name, CreatedAt: truncate(time.Now()), Members: []string{}, Grants: []auth.Grant{}}
	err := s.db.QueryRowContext(ctx, `INSERT INTO teams (name, created_at) VALUES ($1, $2) RETURNING id`,
		name, micros(t.CreatedAt)).Scan(&t.ID)
	if err != nil {
		return Team{}, fmt.Errorf("create team %s: %w", name, mapError(err))
	}
	return t, nil
}

// GetTeam returns a team by name with its members and grants.
func (s *Store) GetTeam(ctx context.Context, name string) (Team, error) {
	var t Team
	var created int64
	err := s.db.QueryRowContext(ctx, `SELECT id, name, created_at FROM teams WHERE name = $1`, name).Scan(&t.ID, &t.Name, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return Team{}, fmt.Errorf("team %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return Team{}, fmt.Errorf("get team %s: %w", name, mapError(err))
	}
	t.CreatedAt = fromMicros(created)
	if err := s.fillTeam(ctx, &t); err != nil {
		return Team{}, err
	}
	return t, nil
}

// ListTeams returns every team by name with members and grants.
func (s *Store) ListTeams(ctx context.Context) ([]Team, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, name, created_at FROM teams ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list teams: %w", mapError(err))
	}
	teams := []Team{}
	for rows.Next() {
		var t Team
		var created int64
		if err := rows.Scan(&t.ID, &t.Name, &created); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list teams: %w", err)
		}
		t.CreatedAt = fromMicros(created)
		teams = append(teams, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list teams: %w", mapError(err))
	}
	for i := range teams {
		if err := s.fillTeam(ctx, &teams[i]); err != nil {
			return nil, err
		}
	}
	return teams, nil
}

func (s *Store) fillTeam(ctx context.Context, t *Team) error {
	rows, err := s.db.QueryContext(ctx, `SELECT u.name FROM users u JOIN team_members m ON m.user_id = u.id
		WHERE m.team_id = $1 ORDER BY u.name`, t.ID)
	if err != nil {
		return fmt.Errorf("members of team %s: %w", t.Name, mapError(err))
	}
	t.Members = []string{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return fmt.Errorf("members of team %s: %w", t.Name, err)
		}
		t.Members = append(t.Members, name)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("members of team %s: %w", t.Name, mapError(err))
	}
	rows, err = s.db.QueryContext(ctx, `SELECT g.id, t.name, g.permission, g.projects, g.environments
		FROM grants g JOIN teams t ON t.id = g.team_id WHERE g.team_id = $1 ORDER BY g.id`, t.ID)
	if err != nil {
		return fmt.Errorf("grants of team %s: %w", t.Name, mapError(err))
	}
	defer rows.Close()
	t.Grants = []auth.Grant{}
	for rows.Next() {
		g, err := scanGrant(rows)
		if err != nil {
			return fmt.Errorf("grants of team %s: %w", t.Name, err)
		}
		t.Grants = append(t.Grants, g)
	}
	return rows.Err()
}

// DeleteTeam removes a team with its memberships and grants.
func (s *Store) DeleteTeam(ctx context.Context, name string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM teams WHERE name = $1`, name)
	return checkAffected(res, err, "delete team "+name)
}

// AddTeamMember puts a user in a team; being a member already is fine.
func (s *Store) AddTeamMember(ctx context.Context, team string, userID int64) error {
	t, err := s.GetTeam(ctx, team)
	if err != nil {
		return err
	}
	q := `INSERT INTO team_members (team_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`
	if _, err := s.db.ExecContext(ctx, q, t.ID, userID); err != nil {
		return fmt.Errorf("add user %d to team %s: %w", userID, team, mapError(err))
	}
	return nil
}

// RemoveTeamMember takes a user out of a team.
func (s *Store) RemoveTeamMember(ctx context.Context, team string, userID int64) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM team_members
		WHERE team_id = (SELECT id FROM teams WHERE name = $1) AND user_id = $2`, team, userID)
	return checkAffected(res, err, fmt.Sprintf("remove user %d from team %s", userID, team))
}

// CreateGrant gives g.Team the permission in g's scope and sets g.ID.
func (s *Store) CreateGrant(ctx context.Context, g *auth.Grant) error {
	t, err := s.GetTeam(ctx, g.Team)
	if err != nil {
		return err
	}
	err = s.db.QueryRowContext(ctx, `INSERT INTO grants (team_id, permission, projects, environments)
		VALUES ($1, $2, $3, $4) RETURNING id`, t.ID, string(g.Permission), encodeList(g.Projects), encodeList(g.Environments)).Scan(&g.ID)
	if err != nil {
		return fmt.Errorf("grant %s to team %s: %w", g.Permission, g.Team, mapError(err))
	}
	return nil
}

// GetGrant returns one grant.
func (s *Store) GetGrant(ctx context.Context, id int64) (auth.Grant, error) {
	g, err := scanGrant(s.db.QueryRowContext(ctx, `SELECT g.id, t.name, g.permission, g.projects, g.environments
		FROM grants g JOIN teams t ON t.id = g.team_id WHERE g.id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return auth.Grant{}, fmt.Errorf("grant %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return auth.Grant{}, fmt.Errorf("get grant %d: %w", id, mapError(err))
	}
	return g, nil
}

// DeleteGrant revokes a grant.
func (s *Store) DeleteGrant(ctx context.Context, id int64) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM grants WHERE id = $1`, id)
	return checkAffected(res, err, fmt.Sprintf("delete grant %d", id))
}

func scanGrant(row rowScanner) (auth.Grant, error) {
	var g auth.Grant
	var perm, projects, envs string
	if err := row.Scan(&g.ID, &g.Team, &perm, &projects, &envs); err != nil {
		return auth.Grant{}, err
	}
	g.Permission = auth.Permission(perm)
	var err error
	if g.Projects, err = decodeList(projects); err != nil {
		return auth.Grant{}, fmt.Errorf("grant %d projects: %w", g.ID, err)
	}
	if g.Environments, err = decodeList(envs); err != nil {
		return auth.Grant{}, fmt.Errorf("grant %d environments: %w", g.ID, err)
	}
	return g, nil
}
