package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/opsbook/opsbook/internal/apitypes"
	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/server"
	"github.com/opsbook/opsbook/internal/store"
)

func (h *handlers) registerAPIKeys() {
	h.s.Handle("GET /api/v1/apikeys", auth.SignedIn(), "The caller's API keys (an administrator's ?all=true: everyone's)", h.listAPIKeys)
	h.s.Handle("POST /api/v1/apikeys", auth.SignedIn(), "Create an API key, shown once (administrators may create one for another user)", h.createAPIKey)
	h.s.Handle("DELETE /api/v1/apikeys/{id}", auth.SignedIn(), "Revoke an API key (own, or any as administrator)", h.deleteAPIKey)
}

func (h *handlers) listAPIKeys(w http.ResponseWriter, r *http.Request) error {
	p := principal(r)
	uid := p.UserID
	if r.URL.Query().Get("all") == "true" {
		if !p.IsAdmin() {
			return auth.ErrForbidden
		}
		uid = 0
	}
	keys, err := h.s.Store().ListAPIKeys(r.Context(), uid)
	if err != nil {
		return err
	}
	server.WriteJSON(w, http.StatusOK, Page[store.APIKey]{Items: keys})
	return nil
}

// createdAPIKey is the answer of POST /api/v1/apikeys.
type createdAPIKey struct {
	store.APIKey
	apitypes.APIKeySecret
}

func (h *handlers) createAPIKey(w http.ResponseWriter, r *http.Request) error {
	var req apitypes.CreateAPIKeyRequest
	if err := server.DecodeJSON(r, &req); err != nil {
		return err
	}
	p := principal(r)
	owner := store.User{ID: p.UserID, Name: p.Name}
	if req.User != "" && req.User != p.Name {
		if !p.IsAdmin() {
			return auth.ErrForbidden
		}
		u, err := h.s.Store().GetUserByName(r.Context(), req.User)
		if err != nil {
			return err
		}
		owner = u
	}
	var ttl time.Duration
	if req.ExpiresIn != "" {
		d, err := time.ParseDuration(req.ExpiresIn)
		if err != nil || d <= 0 {
			return server.BadRequest("expires_in must be a positive duration like \"720h\", not %q", req.ExpiresIn)
		}
		ttl = d
	}
	k, key, err := h.s.CreateAPIKey(r, owner, req.Name, ttl)
	if err != nil {
		return err
	}
	server.WriteJSON(w, http.StatusCreated, createdAPIKey{APIKey: k, APIKeySecret: apitypes.APIKeySecret{Key: key}})
	return nil
}

func (h *handlers) deleteAPIKey(w http.ResponseWriter, r *http.Request) error {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return server.BadRequest("API key id must be a number, not %q", r.PathValue("id"))
	}
	if err := h.s.RevokeAPIKey(r, principal(r), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
