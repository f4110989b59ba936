package store

import (
	"context"
	"fmt"
	"time"
)

// Variable is a value given to every command of runs in its environment
// ("" = every environment). A sensitive variable's Value is sealed by
// internal/secret before it reaches the store.
type Variable struct {
	Environment string    `json:"environment"`
	Name        string    `json:"name"`
	Value       string    `json:"-"`
	Sensitive   bool      `json:"sensitive"`
	UpdatedBy   string    `json:"updated_by"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// SetVariable creates or replaces a variable.
func (s *Store) SetVariable(ctx context.Context, v Variable) error {
	if v.UpdatedAt.IsZero() {
		v.UpdatedAt = time.Now()
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO variables (environment, name, value, sensitive, updated_by, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (environment, name) DO UPDATE SET value = excluded.value, sensitive = excluded.sensitive,
			updated_by = excluded.updated_by, updated_at = excluded.updated_at`,
		v.Environment, v.Name, v.Value, v.Sensitive, v.UpdatedBy, micros(v.UpdatedAt))
	if err != nil {
		return fmt.Errorf("set variable %s: %w", v.Name, mapError(err))
	}
	return nil
}

// GetVariable returns one variable.
func (s *Store) GetVariable(ctx context.Context, env, name string) (Variable, error) {
	vs, err := s.listVariables(ctx, `WHERE environment = $1 AND name = $2`, env, name)
	if err != nil {
		return Variable{}, err
	}
	if len(vs) == 0 {
		return Variable{}, fmt.Errorf("variable %s in environment %q: %w", name, env, ErrNotFound)
	}
	return vs[0], nil
}

// ListVariables returns the variables of one environment ("" for those of
// every environment), or all of them when all is true.
func (s *Store) ListVariables(ctx context.Context, env string, all bool) ([]Variable, error) {
	if all {
		return s.listVariables(ctx, ``)
	}
	return s.listVariables(ctx, `WHERE environment = $1`, env)
}

// VariablesFor returns what a run in env sees: variables of every
// environment, overridden by those of env itself, by name.
func (s *Store) VariablesFor(ctx context.Context, env string) ([]Variable, error) {
	vs, err := s.listVariables(ctx, `WHERE environment = '' OR environment = $1`, env)
	if err != nil {
		return nil, err
	}
	byName := map[string]int{}
	var out []Variable
	for _, v := range vs { // ordered by environment: '' first
		if i, ok := byName[v.Name]; ok {
			out[i] = v
			continue
		}
		byName[v.Name] = len(out)
		out = append(out, v)
	}
	return out, nil
}

// DeleteVariable removes a variable.
func (s *Store) DeleteVariable(ctx context.Context, env, name string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM variables WHERE environment = $1 AND name = $2`, env, name)
	return checkAffected(res, err, fmt.Sprintf("delete variable %s in environment %q", name, env))
}

func (s *Store) listVariables(ctx context.Context, where string, args ...any) ([]Variable, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT environment, name, value, sensitive, updated_by, updated_at FROM variables `+
		where+` ORDER BY environment, name`, args...)
	if err != nil {
		return nil, fmt.Errorf("list variables: %w", mapError(err))
	}
	defer rows.Close()
	out := []Variable{}
	for rows.Next() {
		var v Variable
		var at int64
		if err := rows.Scan(&v.Environment, &v.Name, &v.Value, &v.Sensitive, &v.UpdatedBy, &at); err != nil {
			return nil, fmt.Errorf("list variables: %w", err)
		}
		v.UpdatedAt = fromMicros(at)
		out = append(out, v)
	}
	return out, rows.Err()
}
