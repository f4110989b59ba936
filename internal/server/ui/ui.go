// Package ui is the server-rendered web UI of opsbook: html/template
// pages from internal/web, htmx for partial updates and the live log over
// server-sent events. Every route is registered through server.Handle
// with its authorisation rule, like the JSON API; pages additionally hide
// what the user may not do. One file per page.
package ui

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/server"
	"github.com/opsbook/opsbook/internal/store"
	"github.com/opsbook/opsbook/internal/web"
)

type handlers struct {
	s     *server.Server
	views map[string]*template.Template
	logs  logIndexes // of recently viewed runs' logs
}

// Register adds every UI route to s and makes s render errors of browser
// requests as pages. It panics if the embedded views do not parse, like a
// conflicting route would: both are programming errors found at start-up.
func Register(s *server.Server) {
	views, err := web.Views(funcs)
	if err != nil {
		panic(fmt.Sprintf("ui: %v", err))
	}
	h := &handlers{s: s, views: views}
	s.SetErrorPage(h.errorPage)
	static, err := loadStatic()
	if err != nil {
		panic(fmt.Sprintf("ui: %v", err))
	}
	s.Handle("GET /static/{file...}", auth.Public(), "UI static assets (CSS, htmx), gzipped and with ETags", func(w http.ResponseWriter, r *http.Request) error {
		f, ok := static[r.PathValue("file")]
		if !ok {
			return server.Errorf(http.StatusNotFound, "not_found", "no such asset")
		}
		serveStatic(w, r, f)
		return nil
	})
	h.registerLogin()
	h.registerOverview()
	h.registerRunbook()
	h.registerRun()
	h.registerRuns()
	h.registerRunActions()
	h.registerLive()
	h.registerLogView()
	h.registerReports()
	h.registerBoard()
	h.registerAudit()
	h.registerAdmin()
	h.registerAPIKeys()
}

var funcs = template.FuncMap{
	"join": strings.Join,
	"inc":  func(i int) int { return i + 1 },
	"dur":  formatDuration,
	"short": func(hash string) string {
		if len(hash) > 12 {
			return hash[:12]
		}
		return hash
	},
	"ago": func(t time.Time) string { return age(time.Now(), t) },
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.Local().Format("2006-01-02 15:04:05")
	},
	"stepKind":   stepKind,
	"targetLink": targetLink,
}

// targetLink is the page of an audit entry's target ("run/r-…",
// "user/alice", …); "" when it has none.
func targetLink(target string) string {
	kind, name, ok := strings.Cut(target, "/")
	if !ok || name == "" {
		return ""
	}
	switch kind {
	case "run":
		return "/runs/" + url.PathEscape(name)
	case "runbook":
		return "/runbooks/" + name
	case "user":
		return "/admin/users"
	case "team":
		return "/admin/teams"
	case "trigger":
		return "/admin/triggers"
	case "variable":
		return "/admin/variables"
	case "task":
		return "/board"
	}
	return ""
}

// contentSecurityPolicy forbids every script but our own files: a
// runbook's HTML is sanitised already, and this is the second wall.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"

// page is what every view receives.
type page struct {
	Lang  string
	Title string
	Nav   string // the main navigation entry to highlight
	Sub   string // the admin tab to highlight
	Path  string // the request path, to come back to after switching language
	User  *auth.Principal
	CSRF  string
	Flash string
	Data  any
	msgs  map[string]string
}

// T translates a message key; args fill %s/%d verbs.
func (p *page) T(key string, args ...any) string {
	m, ok := p.msgs[key]
	if !ok {
		m = web.Message("en", key)
	}
	if len(args) > 0 {
		return fmt.Sprintf(m, args...)
	}
	return m
}

// With is the page with other data, for a fragment rendered once per
// item (an overview cell).
func (p *page) With(data any) *page {
	c := *p
	c.Data = data
	return &c
}

// StepKind is a step's kind for people: gate, manual step or call in the
// page's language; a command's language as written (sh, python).
func (p *page) StepKind(s runbook.Step) template.HTML {
	switch k := stepKind(s); k {
	case "gate", "manual", "call":
		return template.HTML(template.HTMLEscapeString(p.T("stepkind_" + k)))
	default:
		return template.HTML("<code>" + template.HTMLEscapeString(k) + "</code>")
	}
}

// TaskState is a planned operation's lifecycle state ("in review") in the
// page's language; a state the catalogue does not know shows as it is.
func (p *page) TaskState(state string) string {
	key := "task_state_" + strings.ReplaceAll(state, " ", "_")
	if _, ok := web.Messages("en")[key]; !ok {
		return state
	}
	return p.T(key)
}

// Can reports whether the user holds perm somewhere (menus); pages check
// the precise scope themselves.
func (p *page) Can(perm string) bool { return p.User.CanSomewhere(auth.Permission(perm)) }

// IsAdmin reports whether the user holds Admin.
func (p *page) IsAdmin() bool { return p.User.IsAdmin() }

// StatusLabel is a run or step status in the page's language.
func (p *page) StatusLabel(status any) string { return p.T("status_" + fmt.Sprint(status)) }

// Badge is a status badge; the class carries the raw status for styling
// and tests, the text is translated.
func (p *page) Badge(status runbook.RunStatus) template.HTML {
	return template.HTML(fmt.Sprintf(`<span class="badge st-%s" data-status="%s">%s</span>`,
		template.HTMLEscapeString(string(status)), template.HTMLEscapeString(string(status)), template.HTMLEscapeString(p.StatusLabel(status))))
}

// newPage starts a page for the request: language, user, CSRF token.
func (h *handlers) newPage(r *http.Request, title, nav string, data any) *page {
	lang := language(r)
	p := &page{Lang: lang, Nav: nav, Path: r.URL.RequestURI(), Data: data, msgs: web.Messages(lang)}
	p.Title = p.T(title)
	if u := auth.FromContext(r.Context()); u != nil {
		p.User, p.CSRF = u, u.CSRFToken
	}
	if f := r.URL.Query().Get("flash"); f != "" {
		p.Flash = p.T(f)
	}
	return p
}

// render writes a whole page.
func (h *handlers) render(w http.ResponseWriter, status int, view string, p *page) error {
	return h.renderTemplate(w, status, view, "layout", p)
}

// renderTemplate executes one named template of a view (a page's layout or
// a fragment for htmx) into a buffer first, so a template error becomes a
// clean 500 instead of half a page.
func (h *handlers) renderTemplate(w http.ResponseWriter, status int, view, name string, p *page) error {
	t, ok := h.views[view]
	if !ok {
		return fmt.Errorf("ui: no view %q", view)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, name, p); err != nil {
		return fmt.Errorf("render %s/%s: %w", view, name, err)
	}
	header(w)
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	return err
}

func header(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", contentSecurityPolicy)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "same-origin")
}

// isHTMX reports whether htmx made the request (it then wants a fragment).
func isHTMX(r *http.Request) bool { return r.Header.Get("HX-Request") == "true" }

// redirect sends the browser to target: htmx follows HX-Redirect, forms
// follow a 303.
func redirect(w http.ResponseWriter, r *http.Request, target string) {
	if isHTMX(r) {
		w.Header().Set("HX-Redirect", target)
		w.WriteHeader(http.StatusOK)
		return
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// errorPage renders errors for browsers: sign-in for 401s, a page (or an
// alert fragment for htmx) for the rest. API paths and non-browser clients
// keep the JSON error.
func (h *handlers) errorPage(w http.ResponseWriter, r *http.Request, e *server.Error) bool {
	if strings.HasPrefix(r.URL.Path, "/api/") || r.URL.Path == "/healthz" || r.URL.Path == "/readyz" || r.URL.Path == "/metrics" {
		return false
	}
	if !isHTMX(r) && !strings.Contains(r.Header.Get("Accept"), "text/html") {
		return false
	}
	if e.Status == http.StatusUnauthorized {
		target := "/login?next=" + url.QueryEscape(r.URL.RequestURI())
		if isHTMX(r) {
			w.Header().Set("HX-Redirect", target)
			w.WriteHeader(http.StatusUnauthorized)
			return true
		}
		http.Redirect(w, r, target, http.StatusSeeOther)
		return true
	}
	p := h.newPage(r, "error", "", nil)
	p.Data = h.errorView(r, p, e)
	if isHTMX(r) {
		// Shown in the page's flash region whatever element asked.
		header(w)
		w.Header().Set("HX-Retarget", "#flash")
		w.Header().Set("HX-Reswap", "innerHTML")
		w.WriteHeader(e.Status)
		fmt.Fprintf(w, `<p class="error" role="alert">%s</p>`, template.HTMLEscapeString(e.Message))
		return true
	}
	if err := h.render(w, e.Status, "error", p); err != nil {
		h.s.Logger().Error("render error page", "err", err)
	}
	return true
}

// errorData is what the error page shows: a headline and advice in the
// user's language, the server's message (English, marked so), and links
// out that lead somewhere else than the refused page.
type errorData struct {
	Status         int
	Headline, Hint string
	Message        string
	Links          []errorLink
	SignOut        bool
}

type errorLink struct{ Href, Text string }

func (h *handlers) errorView(r *http.Request, p *page, e *server.Error) errorData {
	d := errorData{Status: e.Status, Message: e.Message, Headline: p.T("error"), Hint: ""}
	switch e.Status {
	case http.StatusNotFound:
		d.Headline, d.Hint = p.T("err_not_found"), p.T("err_not_found_hint")
	case http.StatusMethodNotAllowed:
		d.Headline, d.Hint = p.T("err_method"), p.T("err_method_hint")
	case http.StatusForbidden:
		d.Headline, d.Hint = p.T("err_forbidden"), p.T("err_forbidden_hint")
	case http.StatusBadRequest:
		d.Headline, d.Hint = p.T("err_bad_request"), p.T("err_bad_request_hint")
	}
	if strings.HasPrefix(r.URL.Path, "/runs/") && r.URL.Path != "/runs/" {
		d.Links = append(d.Links, errorLink{"/runs", p.T("err_all_runs")})
	}
	u := p.User
	switch {
	case u == nil:
		d.Links = append(d.Links, errorLink{"/login", p.T("sign_in")})
	case u.CanSomewhere(auth.RunbookView) && !(e.Status == http.StatusForbidden && r.URL.Path == "/"):
		d.Links = append(d.Links, errorLink{"/", p.T("back_to_overview")})
	default:
		// Nothing to view anywhere: the overview would refuse again.
		d.Hint = p.T("err_no_grants")
		d.Links = append(d.Links, errorLink{"/account/apikeys", p.T("my_api_keys")})
		d.SignOut = true
	}
	return d
}

// language is the UI language: the lang cookie, else the browser's
// Accept-Language, else English.
func language(r *http.Request) string {
	if c, err := r.Cookie(langCookie); err == nil && web.Supported(c.Value) {
		return c.Value
	}
	for _, part := range strings.Split(r.Header.Get("Accept-Language"), ",") {
		tag, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		base, _, _ := strings.Cut(strings.ToLower(tag), "-")
		if web.Supported(base) {
			return base
		}
	}
	return "en"
}

const langCookie = "opsbook_lang"

// scopeRun is the project and environment of the run named by {id}
// (server.ScopeRun: an id prefix resolves among the runs the caller sees).
func (h *handlers) scopeRun(r *http.Request) (auth.Scope, error) {
	id := r.PathValue("id")
	s, err := h.s.ScopeRun(r)
	if errors.Is(err, store.ErrNotFound) {
		// The store's message points at the CLI; a browser user gets the runs list.
		return auth.Scope{}, server.Errorf(http.StatusNotFound, "not_found", "no run has the id %s", id)
	}
	return s, err
}

// scopeRunbookPath is the project of the runbook named by {path...}.
func (h *handlers) scopeRunbookPath(r *http.Request) (auth.Scope, error) {
	return auth.Scope{Project: h.s.Catalog().ProjectOf(r.PathValue("path"))}, nil
}

func principal(r *http.Request) *auth.Principal { return auth.FromContext(r.Context()) }

// age is how long ago t was, compactly: 45s, 12m, 3h, 5d.
func age(now, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", max(int(d.Seconds()), 0))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// formatDuration shows a duration to the second (or to the millisecond
// under a second), e.g. 1m5s, 340ms.
func formatDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return ""
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

func stepKind(s runbook.Step) string {
	switch {
	case s.Gate != nil:
		return "gate"
	case s.Manual != nil:
		return "manual"
	case s.Call != nil:
		return "call"
	case s.Action != nil:
		return s.Action.Lang
	}
	return ""
}
