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
	name := strings.TrimSpace(r.PostFormValue("name"))
	if name == "" {
		return server.BadRequest("an API key needs a name, e.g. the machine or script that uses it")
	}
	key := auth.NewAPIKey()
	k := &store.APIKey{UserID: p.UserID, Name: name, KeyHash: auth.HashToken(key), Hint: key[:8]}
	if err := h.s.Store().CreateAPIKey(r.Context(), k); err != nil {
		return err
	}
	if err := h.s.AuditRequest(r, "apikey.create", "apikey/"+strconv.FormatInt(k.ID, 10), map[string]string{"name": name, "via": "ui"}); err != nil {
		return err
	}
	return h.renderAPIKeys(w, r, key)
}

func (h *handlers) revokeAPIKey(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	p := principal(r)
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return server.BadRequest("API key id must be a number")
	}
	k, err := h.s.Store().GetAPIKey(ctx, id)
	if err != nil {
		return err
	}
	if k.UserID != p.UserID && !p.IsAdmin() {
		return auth.ErrForbidden
	}
	if err := h.s.Store().DeleteAPIKey(ctx, id); err != nil {
		return err
	}
	if err := h.s.AuditRequest(r, "apikey.revoke", "apikey/"+strconv.FormatInt(id, 10), map[string]string{"via": "ui"}); err != nil {
		return err
	}
	http.Redirect(w, r, "/account/apikeys?flash=revoked", http.StatusSeeOther)
	return nil
}
