package ui

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/server"
	"github.com/opsbook/opsbook/internal/store"
	"github.com/opsbook/opsbook/internal/web"
)

func (h *handlers) registerLogin() {
	h.s.Handle("GET /login", auth.Public(), "UI: sign-in page", h.loginPage)
	h.s.Handle("POST /login", auth.Public(), "UI: sign in with name and password (form)", h.login)
	h.s.Handle("POST /logout", auth.SignedIn(), "UI: sign out", h.logout)
	h.s.Handle("POST /lang", auth.Public(), "UI: choose the interface language", h.setLanguage)
}

type loginData struct {
	Next, Name, Error string
}

// safeNext keeps post-login redirects on this site.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	return next
}

func (h *handlers) loginPage(w http.ResponseWriter, r *http.Request) error {
	if principal(r) != nil {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return nil
	}
	return h.render(w, http.StatusOK, "login", h.newPage(r, "sign_in", "", loginData{Next: r.URL.Query().Get("next")}))
}

var crossOrigin = http.NewCrossOriginProtection()

// login checks the password like POST /api/v1/login does and starts a
// cookie session. The login form is refused from other origins, so no
// site can sign a browser in as someone else.
func (h *handlers) login(w http.ResponseWriter, r *http.Request) error {
	if err := crossOrigin.Check(r); err != nil {
		return auth.ErrCSRF
	}
	ctx := r.Context()
	name, password := strings.TrimSpace(r.PostFormValue("name")), r.PostFormValue("password")
	data := loginData{Next: r.PostFormValue("next"), Name: name}
	st := h.s.Store()
	fail := func(reason string) error {
		h.s.Audit(ctx, name, h.s.RemoteAddr(r), "login.fail", "user/"+name, map[string]string{"reason": reason, "via": "ui"})
		p := h.newPage(r, "sign_in", "", nil)
		data.Error = p.T("bad_credentials")
		p.Data = data
		return h.render(w, http.StatusUnauthorized, "login", p)
	}
	u, err := st.GetUserByName(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		auth.BurnPasswordCheck(password)
		return fail("unknown user")
	}
	if err != nil {
		return err
	}
	ok := false
	if u.PasswordHash != "" && !u.Disabled && !u.Service {
		if ok, err = auth.VerifyPassword(u.PasswordHash, password); err != nil {
			return err
		}
	} else {
		auth.BurnPasswordCheck(password)
	}
	if !ok {
		return fail("bad password or disabled")
	}
	token, csrf := auth.NewToken(), auth.NewToken()
	now := h.s.Now()
	sess := store.Session{TokenHash: auth.HashToken(token), UserID: u.ID, CSRF: csrf, Remote: h.s.RemoteAddr(r), CreatedAt: now, ExpiresAt: now.Add(h.s.SessionTTL())}
	if err := st.CreateSession(ctx, sess); err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: server.SessionCookie, Value: token, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Secure: h.s.SecureRequest(r), Expires: sess.ExpiresAt})
	if err := h.s.Audit(ctx, u.Name, h.s.RemoteAddr(r), "login", "user/"+u.Name, map[string]string{"via": "ui"}); err != nil {
		return err
	}
	http.Redirect(w, r, safeNext(data.Next), http.StatusSeeOther)
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
	if err := h.s.AuditRequest(r, "logout", "user/"+principal(r).Name, map[string]string{"via": "ui"}); err != nil {
		return err
	}
	http.Redirect(w, r, "/login", http.StatusSeeOther)
	return nil
}

// setLanguage stores the chosen language in a cookie for a year.
func (h *handlers) setLanguage(w http.ResponseWriter, r *http.Request) error {
	if err := crossOrigin.Check(r); err != nil {
		return auth.ErrCSRF
	}
	lang := r.PostFormValue("lang")
	if !web.Supported(lang) {
		return server.BadRequest("language %q is not offered; choose en or zh", lang)
	}
	http.SetCookie(w, &http.Cookie{Name: langCookie, Value: lang, Path: "/", MaxAge: 365 * 24 * 3600,
		SameSite: http.SameSiteLaxMode, Secure: h.s.SecureRequest(r)})
	http.Redirect(w, r, safeNext(r.PostFormValue("next")), http.StatusSeeOther)
	return nil
}
