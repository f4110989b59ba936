package server

import (
	"net/http"
	"strconv"
	"time"

	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/store"
)

// CreateAPIKey makes an API key for owner, stores its hash and audits it;
// the key itself is returned to be shown once. A zero ttl means the key
// does not expire. The API and the UI's account page both create keys here.
func (s *Server) CreateAPIKey(r *http.Request, owner store.User, name string, ttl time.Duration) (store.APIKey, string, error) {
	if name == "" {
		return store.APIKey{}, "", BadRequest("name is required: say what the key is for (e.g. \"ci deploy\")")
	}
	key := auth.NewAPIKey()
	k := store.APIKey{UserID: owner.ID, User: owner.Name, Name: name, KeyHash: auth.HashToken(key), Hint: key[:len(auth.APIKeyPrefix)+4], CreatedAt: s.Now()}
	if ttl > 0 {
		k.ExpiresAt = k.CreatedAt.Add(ttl)
	}
	if err := s.store.CreateAPIKey(r.Context(), &k); err != nil {
		return store.APIKey{}, "", err
	}
	if err := s.AuditRequest(r, "apikey.create", "user/"+owner.Name, map[string]string{"key": strconv.FormatInt(k.ID, 10), "name": k.Name}); err != nil {
		return store.APIKey{}, "", err
	}
	return k, key, nil
}

// RevokeAPIKey deletes API key id, p's own or, for an administrator,
// anyone's, and audits it. Someone else's key looks like no key at all.
func (s *Server) RevokeAPIKey(r *http.Request, p *auth.Principal, id int64) error {
	k, err := s.store.GetAPIKey(r.Context(), id)
	if err != nil {
		return err
	}
	if k.UserID != p.UserID && !p.IsAdmin() {
		return Errorf(http.StatusNotFound, "not_found", "API key %d: not found", id)
	}
	if err := s.store.DeleteAPIKey(r.Context(), id); err != nil {
		return err
	}
	return s.AuditRequest(r, "apikey.delete", "user/"+k.User, map[string]string{"key": strconv.FormatInt(id, 10), "name": k.Name})
}
