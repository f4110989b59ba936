package ui

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/server"
	"github.com/opsbook/opsbook/internal/store"
)

func (h *handlers) registerAPIKeys() {
	h.s.Handle("GET /account/apikeys", auth.SignedIn(), "UI: my API keys", h.apiKeys)
	h.s.Handle("POST /account/apikeys", auth.SignedIn(), "UI: create an API key (shown once)", h.createAPIKey)
	h.s.Handle("POST /account/apikeys/{id}/revoke", auth.SignedIn(), "UI: revoke one of my API keys", h.revokeAPIKey)
}

type apiKeysData struct {
	Keys   []store.APIKey
	NewKey string
}

func (h *handlers) apiKeys(w http.ResponseWriter, r *http.Request) error {
	return h.renderAPIKeys(w, r, "")
}

func (h *handlers) renderAPIKeys(w http.ResponseWriter, r *http.Request, newKey string) error {
	keys, err := h.s.Store().ListAPIKeys(r.Context(), principal(r).UserID)
	if err != nil {
		return err
	}
	return h.render(w, http.StatusOK, "apikeys", h.newPage(r, "my_api_keys", "", apiKeysData{Keys: keys, NewKey: newKey}))
}

// createAPIKey shows the new key in the response to the POST itself, the
// only time it exists outside the caller's hands: the store keeps a hash.
func (h *handlers) createAPIKey(w http.ResponseWriter, r *http.Request) error {
	p := principal(r)
	_, key, err := h.s.CreateAPIKey(r, store.User{ID: p.UserID, Name: p.Name}, strings.TrimSpace(r.PostFormValue("name")), 0)
	if err != nil {
		return err
	}
	return h.renderAPIKeys(w, r, key)
}

func (h *handlers) revokeAPIKey(w http.ResponseWriter, r *http.Request) error {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return server.BadRequest("API key id must be a number")
	}
	if err := h.s.RevokeAPIKey(r, principal(r), id); err != nil {
		return err
	}
	http.Redirect(w, r, "/account/apikeys?flash=revoked", http.StatusSeeOther)
	return nil
}
