package server

import (
	"context"
	"regexp"

	"github.com/opsbook/opsbook/internal/store"
)

// variableName is what a variable may be called: it becomes an
// environment variable of the steps.
var variableName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)

// SetVariable checks a variable's name and environment ("" for every
// environment), seals a sensitive value under the master key and stores
// it; the API and the UI's variables page both set variables here. The
// returned variable holds the sealed value.
func (s *Server) SetVariable(ctx context.Context, actor, env, name, value string, sensitive bool) (store.Variable, error) {
	if !variableName.MatchString(name) {
		return store.Variable{}, BadRequest("variable name %q: use letters, digits and _, not starting with a digit (it becomes an environment variable)", name)
	}
	if env != "" {
		if _, err := s.catalog.Workspace().Environment(env); err != nil {
			return store.Variable{}, BadRequest("%v", err)
		}
	}
	v := store.Variable{Environment: env, Name: name, Value: value, Sensitive: sensitive, UpdatedBy: actor, UpdatedAt: s.now()}
	if sensitive {
		sealed, err := s.keys.Seal([]byte(value), VariableAAD(env, name))
		if err != nil {
			return store.Variable{}, err
		}
		v.Value = sealed
	}
	if err := s.store.SetVariable(ctx, v); err != nil {
		return store.Variable{}, err
	}
	return v, nil
}
