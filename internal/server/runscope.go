package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/store"
)

// RunFor finds the run an id or id prefix names as p sees it: the runs p
// may not view are not there for p, so an ambiguous prefix resolves to the
// one run p can see, and an ambiguity names only runs p can see (another
// project's run ids never leak through the error).
func (s *Server) RunFor(ctx context.Context, p *auth.Principal, id string) (runbook.Run, error) {
	run, err := s.store.GetRun(ctx, id)
	var ambiguous *store.AmbiguousIDError
	if !errors.As(err, &ambiguous) {
		return run, err
	}
	var visible []runbook.Run
	for _, c := range ambiguous.Candidates {
		r, err := s.store.GetRun(ctx, c)
		if errors.Is(err, store.ErrNotFound) {
			continue // "…", or a run deleted meanwhile
		}
		if err != nil {
			return runbook.Run{}, err
		}
		if p.Can(auth.RunbookView, auth.Scope{Project: s.Catalog().ProjectOf(r.Runbook), Environment: r.Environment}) {
			visible = append(visible, r)
		}
	}
	switch len(visible) {
	case 0:
		return runbook.Run{}, fmt.Errorf("run %s: %w; list runs with `opsbook runs`", id, store.ErrNotFound)
	case 1:
		return visible[0], nil
	}
	ids := make([]string, len(visible))
	for i, r := range visible {
		ids[i] = r.ID
	}
	return runbook.Run{}, &store.AmbiguousIDError{Prefix: id, Candidates: ids}
}

// ScopeRun is the scope function of routes about the run {id}: its
// project and environment. It resolves an id prefix with RunFor and puts
// the full id back into the path, so the handler reads the run the rule
// checked.
func (s *Server) ScopeRun(r *http.Request) (auth.Scope, error) {
	run, err := s.RunFor(r.Context(), auth.FromContext(r.Context()), r.PathValue("id"))
	if err != nil {
		return auth.Scope{}, err
	}
	r.SetPathValue("id", run.ID)
	return auth.Scope{Project: s.Catalog().ProjectOf(run.Runbook), Environment: run.Environment}, nil
}
