package server

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"

	"github.com/opsbook/opsbook/internal/auth"
)

// Route is one registered route with the rule that guards it.
type Route struct {
	Method  string
	Path    string // the ServeMux pattern's path, e.g. /api/v1/runs/{id}
	Rule    auth.Rule
	Summary string
}

// HandlerFunc is an API handler: it returns an error instead of writing
// one, so every error goes through WriteError.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// Handle registers a route. Every route of the server is registered here,
// with its authorisation rule; an invalid (zero) rule is a programming
// error and panics at start-up, like a conflicting ServeMux pattern.
// pattern is "METHOD /path".
func (s *Server) Handle(pattern string, rule auth.Rule, summary string, h HandlerFunc) {
	method, path, ok := strings.Cut(pattern, " ")
	if !ok || method == "" || !strings.HasPrefix(path, "/") {
		panic(fmt.Sprintf("server: route %q must be \"METHOD /path\"", pattern))
	}
	if !rule.Valid() {
		panic(fmt.Sprintf("server: route %q has no authorisation rule", pattern))
	}
	s.routes = append(s.routes, Route{Method: method, Path: path, Rule: rule, Summary: summary})
	s.mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setRoute(r, path)
		p := auth.FromContext(r.Context())
		if err := auth.CheckCSRF(p, r); err != nil {
			s.WriteError(w, r, err)
			return
		}
		if err := rule.Check(p, r); err != nil {
			s.WriteError(w, r, err)
			return
		}
		if err := h(w, r); err != nil {
			s.WriteError(w, r, err)
		}
	}))
}

// Routes returns every registered route, sorted by path then method.
func (s *Server) Routes() []Route {
	out := append([]Route(nil), s.routes...)
	sort.Slice(out, func(i, j int) bool {
		if out[i].Path != out[j].Path {
			return out[i].Path < out[j].Path
		}
		return out[i].Method < out[j].Method
	})
	return out
}

// PeekBody returns the request body and puts it back so the handler can
// read it again; scope functions use it to find what a request is about.
func PeekBody(r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	r.Body.Close()
	if err != nil {
		return nil, BadRequest("read request body: %v", err)
	}
	if len(b) > MaxBody {
		return nil, Errorf(http.StatusRequestEntityTooLarge, "too_large", "request body over %d bytes", MaxBody)
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	return b, nil
}
