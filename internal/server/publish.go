package server

import (
	"net/http"

	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/store"
)

// Publish makes runbook rel's current content its published snapshot, as
// p, and audits it; the API and the UI both publish through it. content,
// when set, must equal the runbook's current content hash, so a reviewer
// publishes exactly what they reviewed. A runbook with errors is refused.
func (s *Server) Publish(r *http.Request, p *auth.Principal, rel, content string) (store.Publication, error) {
	e, ok := s.Catalog().Get(rel)
	if !ok {
		return store.Publication{}, Errorf(http.StatusNotFound, "not_found", "runbook %s is not in the workspace", rel)
	}
	if content != "" && content != e.Content {
		return store.Publication{}, Errorf(http.StatusConflict, "changed", "runbook %s is now %s, not %s: it changed since you looked; review it again", e.Path, e.Content, content)
	}
	for _, d := range e.Diagnostics {
		if d.Severity == "error" {
			return store.Publication{}, BadRequest("runbook %s has errors; fix them before publishing: %s", e.Path, d)
		}
	}
	sn := e.Documents().Snapshot(e.Content, p.Name)
	ctx := r.Context()
	if err := s.store.PutSnapshot(ctx, sn); err != nil {
		return store.Publication{}, err
	}
	pub := store.Publication{Runbook: e.Path, Hash: e.Content, PublishedBy: p.Name, PublishedAt: s.Now()}
	if err := s.store.Publish(ctx, pub); err != nil {
		return store.Publication{}, err
	}
	if err := s.AuditRequest(r, "snapshot.publish", "runbook/"+e.Path, map[string]string{"snapshot": e.Content}); err != nil {
		return store.Publication{}, err
	}
	return pub, nil
}
