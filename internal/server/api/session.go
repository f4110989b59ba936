package api

import (
	"net/http"

	"github.com/opsbook/opsbook/internal/apitypes"
	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/server"
)

func (h *handlers) registerSession() {
	h.s.Handle("POST /api/v1/login", auth.Public(), "Sign in with name and password; sets the session cookie", h.login)
	h.s.Handle("POST /api/v1/logout", auth.SignedIn(), "Sign out: ends the session", h.logout)
	h.s.Handle("GET /api/v1/session", auth.SignedIn(), "Who is signed in, their grants and the session's CSRF token", h.session)
}

// sessionView is the answer of GET /api/v1/session.
type sessionView struct {
	User      string             `json:"user"`
	Service   bool               `json:"service"`
	Via       auth.PrincipalKind `json:"via"` // session | apikey
	Teams     []string           `json:"teams"`
	Grants    []auth.Grant       `json:"grants"`
	Admin     bool               `json:"admin"`
	CSRFToken string             `json:"csrf_token"` // "" unless signed in with a session; API keys need none
}

func (h *handlers) login(w http.ResponseWriter, r *http.Request) error {
	var req apitypes.LoginRequest
	if err := server.DecodeJSON(r, &req); err != nil {
		return err
	}
	u, sess, err := h.s.Login(w, r, req.Name, req.Password, "")
	if err != nil {
		return err
	}
	server.WriteJSON(w, http.StatusOK, apitypes.LoginResponse{User: u.Name, CSRFToken: sess.CSRF, ExpiresAt: sess.ExpiresAt})
	return nil
}

func (h *handlers) logout(w http.ResponseWriter, r *http.Request) error {
	if err := h.s.Logout(w, r, ""); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *handlers) session(w http.ResponseWriter, r *http.Request) error {
	p := principal(r)
	server.WriteJSON(w, http.StatusOK, sessionView{
		User: p.Name, Service: p.Service, Via: p.Via, Teams: p.Teams, Grants: p.Grants,
		Admin: p.IsAdmin(), CSRFToken: p.CSRFToken,
	})
	return nil
}
