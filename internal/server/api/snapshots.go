package api

import (
	"net/http"

	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/server"
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
	pub, err := h.s.Publish(r, principal(r), req.Runbook, req.Content)
	if err != nil {
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
