package ui

import (
	"errors"
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/server"
	"github.com/opsbook/opsbook/internal/web"
)

func (h *handlers) registerLogin() {
	h.s.Handle("GET /login", auth.Public(), "UI: sign-in page", h.loginPage)
	h.s.Handle("POST /login", auth.Public(), "UI: sign in with name and password (form)", h.login)
	h.s.Handle("POST /logout", auth.SignedIn(), "UI: sign out", h.logout)
	h.s.Handle("POST /lang", auth.Public(), "UI: choose the interface language", h.setLanguage)
	h.s.Handle("GET "+server.OIDCLoginPath, auth.Public(), "UI: sign in through the OpenID Connect provider (redirects to it)", h.oidcLogin)
	h.s.Handle("GET "+server.OIDCCallbackPath, auth.Public(), "UI: the OpenID Connect provider's redirect back after sign-in", h.oidcCallback)
}

type loginData struct {
	Next, Name, Error string
	// OIDC names the identity provider when sign-in through it is offered.
	OIDC string
}

// safeNext keeps post-login redirects on this site: next must be a path
// on this origin once decoded and normalised, as a browser would read it.
// Browsers drop tabs and newlines inside URLs and treat a backslash as a
// slash, so "/\t/evil.example" and "/\\evil.example" lead off-site; any
// control character, backslash, scheme, host or leading "//" gives "/".
func safeNext(next string) string {
	bad := func(s string) bool {
		return strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' })
	}
	if bad(next) {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" || bad(u.Path) {
		return "/"
	}
	if !strings.HasPrefix(u.Path, "/") || strings.HasPrefix(u.Path, "//") {
		return "/"
	}
	clean := path.Clean(u.Path)
	if strings.HasSuffix(u.Path, "/") && clean != "/" {
		clean += "/"
	}
	out := (&url.URL{Path: clean, RawQuery: u.RawQuery, Fragment: u.Fragment}).String()
	if !strings.HasPrefix(out, "/") || strings.HasPrefix(out, "//") {
		return "/"
	}
	return out
}

func (h *handlers) loginPage(w http.ResponseWriter, r *http.Request) error {
	if principal(r) != nil {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return nil
	}
	return h.render(w, http.StatusOK, "login", h.newPage(r, "sign_in", "", loginData{Next: r.URL.Query().Get("next"), OIDC: h.s.OIDCName()}))
}

func (h *handlers) oidcLogin(w http.ResponseWriter, r *http.Request) error {
	return h.s.BeginOIDC(w, r, safeNext(r.URL.Query().Get("next")))
}

// oidcCallback finishes the sign-in; a refusal is shown on the sign-in
// page, where the user can start again.
func (h *handlers) oidcCallback(w http.ResponseWriter, r *http.Request) error {
	next, err := h.s.FinishOIDC(w, r)
	var refused *server.Error
	if errors.As(err, &refused) && refused.Code == "oidc_failed" {
		p := h.newPage(r, "sign_in", "", nil)
		p.Data = loginData{Error: refused.Message, OIDC: h.s.OIDCName()}
		return h.render(w, refused.Status, "login", p)
	}
	if err != nil {
		return err
	}
	http.Redirect(w, r, safeNext(next), http.StatusSeeOther)
	return nil
}

// login signs in with server.Login, as POST /api/v1/login does, and
// shows the form again on a refusal. The login form is refused from other
// origins, so no site can sign a browser in as someone else.
func (h *handlers) login(w http.ResponseWriter, r *http.Request) error {
	if err := auth.CheckOrigin(r); err != nil {
		return err
	}
	name := strings.TrimSpace(r.PostFormValue("name"))
	data := loginData{Next: r.PostFormValue("next"), Name: name}
	_, _, err := h.s.Login(w, r, name, r.PostFormValue("password"), "ui")
	if errors.Is(err, server.ErrBadCredentials) {
		p := h.newPage(r, "sign_in", "", nil)
		data.Error = p.T("bad_credentials")
		data.OIDC = h.s.OIDCName()
		p.Data = data
		return h.render(w, http.StatusUnauthorized, "login", p)
	}
	if errors.Is(err, server.ErrThrottled) {
		p := h.newPage(r, "sign_in", "", nil)
		data.Error = server.ErrThrottled.Message
		data.OIDC = h.s.OIDCName()
		p.Data = data
		return h.render(w, http.StatusTooManyRequests, "login", p)
	}
	if err != nil {
		return err
	}
	http.Redirect(w, r, safeNext(data.Next), http.StatusSeeOther)
	return nil
}

func (h *handlers) logout(w http.ResponseWriter, r *http.Request) error {
	if err := h.s.Logout(w, r, "ui"); err != nil {
		return err
	}
	http.Redirect(w, r, "/login", http.StatusSeeOther)
	return nil
}

// setLanguage stores the chosen language in a cookie for a year.
func (h *handlers) setLanguage(w http.ResponseWriter, r *http.Request) error {
	if err := auth.CheckOrigin(r); err != nil {
		return err
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
