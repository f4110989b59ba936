package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/server"
	"github.com/opsbook/opsbook/internal/store"
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

func (h *handlers) login(w http.ResponseWriter, r *http.Request) error {
	var req loginRequest
	if err := server.DecodeJSON(r, &req); err != nil {
		return err
	}
	ctx := r.Context()
	st := h.s.Store()
	refused := server.Errorf(http.StatusUnauthorized, "bad_credentials", "wrong name or password")
	u, err := st.GetUserByName(ctx, req.Name)
	if errors.Is(err, store.ErrNotFound) {
		auth.BurnPasswordCheck(req.Password)
		h.s.Audit(ctx, req.Name, h.s.RemoteAddr(r), "login.fail", "user/"+req.Name, map[string]string{"reason": "unknown user"})
		return refused
	}
	if err != nil {
		return err
	}
	ok := false
	if u.PasswordHash != "" && !u.Disabled && !u.Service {
		if ok, err = auth.VerifyPassword(u.PasswordHash, req.Password); err != nil {
			return err
		}
	} else {
		auth.BurnPasswordCheck(req.Password)
	}
	if !ok {
		h.s.Audit(ctx, req.Name, h.s.RemoteAddr(r), "login.fail", "user/"+req.Name, map[string]string{"reason": "bad password or disabled"})
		return refused
	}
	token, csrf := auth.NewToken(), auth.NewToken()
	now := h.s.Now()
	sess := store.Session{TokenHash: auth.HashToken(token), UserID: u.ID, CSRF: csrf, Remote: h.s.RemoteAddr(r), CreatedAt: now, ExpiresAt: now.Add(h.s.SessionTTL())}
	if err := st.CreateSession(ctx, sess); err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: server.SessionCookie, Value: token, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Secure: h.s.SecureRequest(r), Expires: sess.ExpiresAt})
	if err := h.s.Audit(ctx, u.Name, h.s.RemoteAddr(r), "login", "user/"+u.Name, nil); err != nil {
		return err
	}
	server.WriteJSON(w, http.StatusOK, map[string]any{"user": u.Name, "csrf_token": csrf, "expires_at": sess.ExpiresAt})
	return nil
}

func (h *handlers) logout(w http.ResponseWriter, r *http.Request) error {
	if c, err := r.Cookie(server.SessionCookie); err == nil {
		if err := h.s.Store().DeleteSession(r.Context(), auth.HashToken(c.Value)); err != nil {
			return err
		}
	}
	http.SetCookie(w, &http.Cookie{Name: server.SessionCookie, Value: "", Path: "/", HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Secure: h.s.SecureRequest(r), MaxAge: -1, Expires: time.Unix(1, 0)})
	if err := h.s.AuditRequest(r, "logout", "user/"+principal(r).Name, nil); err != nil {
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
