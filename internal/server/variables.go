package server

import (
	"context"
	"net/http"
	"strconv"

	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/store"
)

// SetVariable checks a variable's name and environment ("" for every
// environment), seals a sensitive value under the master key and stores
// and audits it; the API and the UI's variables page both set variables
// here. The returned variable holds the sealed value.
func (s *Server) SetVariable(r *http.Request, actor, env, name, value string, sensitive bool) (store.Variable, error) {
	if err := runbook.CheckEnvName(name); err != nil {
		return store.Variable{}, BadRequest("variable %v", err)
	}
	if env != "" {
		if _, err := s.catalog.Workspace().Environment(env); err != nil {
			return store.Variable{}, BadRequest("%v", err)
		}
	}
	if sensitive {
		if err := runbook.CheckSecretValue(value); err != nil {
			return store.Variable{}, BadRequest("variable %s: %v", name, err)
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
	if err := s.store.SetVariable(r.Context(), v); err != nil {
		return store.Variable{}, err
	}
	if err := s.AuditRequest(r, "variable.set", "variable/"+name, map[string]string{"environment": env, "sensitive": strconv.FormatBool(sensitive)}); err != nil {
		return store.Variable{}, err
	}
	return v, nil
}

// VisibleVariables lists the variables of env (see store.ListVariables)
// that p may see: those of an environment p may view, and those of every
// environment, which apply to all of them. Sensitive values stay sealed.
func (s *Server) VisibleVariables(ctx context.Context, p *auth.Principal, env string, all bool) ([]store.Variable, error) {
	vs, err := s.store.ListVariables(ctx, env, all)
	if err != nil {
		return nil, err
	}
	var out []store.Variable
	for _, v := range vs {
		if v.Environment == "" || p.Can(auth.RunbookView, auth.Scope{Environment: v.Environment}) {
			out = append(out, v)
		}
	}
	return out, nil
}
