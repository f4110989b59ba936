// Package api is the JSON API of the opsbook server under /api/v1: one
// file per resource, every route registered through server.Handle with its
// authorisation rule. Errors are returned to server.WriteError, which is
// the one place that maps them to statuses.
package api

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/opsbook/opsbook/internal/apitypes"
	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/server"
)

// handlers holds what every handler needs.
type handlers struct {
	s *server.Server
}

// Register adds every /api/v1 route to s.
func Register(s *server.Server) {
	h := &handlers{s: s}
	h.registerSession()
	h.registerCatalog()
	h.registerSnapshots()
	h.registerVariables()
	h.registerRuns()
	h.registerAdmin()
	h.registerAPIKeys()
	h.registerAudit()
	h.registerTriggers()
	h.registerTasks()
	s.Handle("GET /api/v1/openapi.json", auth.Public(), "This API's OpenAPI 3 document", h.openAPI)
}

// Page is a page of a list (apitypes.Page, named here for the handlers).
type Page[T any] = apitypes.Page[T]

// limitParam reads ?limit= (default def, at most max).
func limitParam(r *http.Request, def, max int) (int, error) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, server.BadRequest("limit must be a positive integer, not %q", v)
	}
	return min(n, max), nil
}

// scopeFromBody reads the runbook and environment a request body names.
func (h *handlers) scopeFromBody(r *http.Request) (auth.Scope, error) {
	b, err := server.PeekBody(r)
	if err != nil {
		return auth.Scope{}, err
	}
	var v struct {
		Runbook     string `json:"runbook"`
		Environment string `json:"environment"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return auth.Scope{}, server.BadRequest("request body: %v", err)
	}
	if v.Runbook == "" {
		return auth.Scope{}, server.BadRequest("request body: \"runbook\" (a path relative to the workspace) is required")
	}
	return auth.Scope{Project: h.s.Catalog().ProjectOf(v.Runbook), Environment: v.Environment}, nil
}

// scopeRunbookPath is the project of the runbook named by {path...}.
func (h *handlers) scopeRunbookPath(r *http.Request) (auth.Scope, error) {
	return auth.Scope{Project: h.s.Catalog().ProjectOf(r.PathValue("path"))}, nil
}

// scopeRun is the project and environment of the run named by {id}
// (server.ScopeRun: an id prefix resolves among the runs the caller sees).
func (h *handlers) scopeRun(r *http.Request) (auth.Scope, error) { return h.s.ScopeRun(r) }

// scopeVariable is the environment of ?environment=; none means every
// environment at once.
func (h *handlers) scopeVariable(r *http.Request) (auth.Scope, error) {
	env := r.URL.Query().Get("environment")
	if env == "" {
		env = auth.AllEnvironments
	}
	return auth.Scope{Project: auth.AllProjects, Environment: env}, nil
}

func principal(r *http.Request) *auth.Principal { return auth.FromContext(r.Context()) }
