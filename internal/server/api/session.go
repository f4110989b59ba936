package api

import (
	"mime"
	"net/http"

	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/server"
)

func (h *handlers) registerSession() {
	h.s.Handle("POST /api/v1/login", auth.Public(), "Sign in with name and password; sets the session cookie", h.login)
	h.s.Handle("POST /api/v1/logout", auth.SignedIn(), "Sign out: ends the session", h.logout)
	h.s.Handle("GET /api/v1/session", auth.SignedIn(), "Who is signed in, their grants and the session's CSRF token", h.session)
}

type loginRequest struct {
	Name     string `json:"name"`
	Password string `json:"password"`
}

// login refuses what a browser on another site could send: a cross-site
// request (Origin / Sec-Fetch-Site) and any body but JSON, which no HTML
// form and no "simple" cross-site fetch can carry. Without this a page
// elsewhere could sign a visitor's browser in as the attacker (login CSRF).
func (h *handlers) login(w http.ResponseWriter, r *http.Request) error {
	if err := auth.CheckOrigin(r); err != nil {
		return err
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		return server.Errorf(http.StatusUnsupportedMediaType, "unsupported_media_type", "sign in with a JSON body and Content-Type: application/json")
	}
	var req loginRequest
	if err := server.DecodeJSON(r, &req); err != nil {
		return err
	}
	u, sess, err := h.s.Login(w, r, req.Name, req.Password, "")
	if err != nil {
		return err
	}
	server.WriteJSON(w, http.StatusOK, map[string]any{"user": u.Name, "csrf_token": sess.CSRF, "expires_at": sess.ExpiresAt})
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
	server.WriteJSON(w, http.StatusOK, map[string]any{
		"user": p.Name, "service": p.Service, "via": p.Via, "teams": p.Teams, "grants": p.Grants,
		"admin": p.IsAdmin(), "csrf_token": p.CSRFToken,
	})
	return nil
}
