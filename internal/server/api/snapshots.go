package api

import (
	"net/http"

	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/server"
	"github.com/opsbook/opsbook/internal/store"
)

func (h *handlers) registerSnapshots() {
	h.s.Handle("POST /api/v1/snapshots", auth.Need(auth.RunbookEdit, h.scopeFromBody), "Publish the runbook's current content as its published snapshot", h.publish)
	h.s.Handle("GET /api/v1/snapshots/{hash}", auth.Need(auth.RunbookView, h.scopeSnapshot), "A stored snapshot's metadata", h.getSnapshot)
}

func (h *handlers) scopeSnapshot(r *http.Request) (auth.Scope, error) {
	sn, err := h.s.Store().GetSnapshot(r.Context(), r.PathValue("hash"))
	if err != nil {
		return auth.Scope{}, err
	}
	return auth.Scope{Project: h.s.Catalog().ProjectOf(sn.Runbook)}, nil
}

type publishRequest struct {
	Runbook string `json:"runbook" api:"required"`
	// Content, when set, must equal the runbook's current content hash, so
	// a reviewer publishes exactly what they reviewed.
	Content string `json:"content,omitempty"`
}

func (h *handlers) publish(w http.ResponseWriter, r *http.Request) error {
	var req publishRequest
	if err := server.DecodeJSON(r, &req); err != nil {
		return err
	}
	e, ok := h.s.Catalog().Get(req.Runbook)
	if !ok {
		return server.Errorf(http.StatusNotFound, "not_found", "runbook %s is not in the workspace", req.Runbook)
	}
	if req.Content != "" && req.Content != e.Content {
		return server.Errorf(http.StatusConflict, "changed", "runbook %s is now %s, not %s: it changed since you looked; review it again", e.Path, e.Content, req.Content)
	}
	if len(e.Diagnostics) > 0 {
		for _, d := range e.Diagnostics {
			if d.Severity == "error" {
				return server.BadRequest("runbook %s has errors; fix them before publishing: %s", e.Path, d)
			}
		}
	}
	p := principal(r)
	sn := e.Documents().Snapshot(e.Content, p.Name)
	st := h.s.Store()
	if err := st.PutSnapshot(r.Context(), sn); err != nil {
		return err
	}
	pub := store.Publication{Runbook: e.Path, Hash: e.Content, PublishedBy: p.Name, PublishedAt: h.s.Now()}
	if err := st.Publish(r.Context(), pub); err != nil {
		return err
	}
	if err := h.s.AuditRequest(r, "snapshot.publish", "runbook/"+e.Path, map[string]string{"snapshot": e.Content}); err != nil {
		return err
	}
	server.WriteJSON(w, http.StatusCreated, pub)
	return nil
}

func (h *handlers) getSnapshot(w http.ResponseWriter, r *http.Request) error {
	sn, err := h.s.Store().GetSnapshot(r.Context(), r.PathValue("hash"))
	if err != nil {
		return err
	}
	server.WriteJSON(w, http.StatusOK, sn)
	return nil
}
