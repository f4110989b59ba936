package server

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/store"
)

// OIDCConfig turns on sign-in through an OpenID Connect provider
// (authorization-code flow with PKCE).
type OIDCConfig struct {
	Issuer       string
	ClientID     string
	ClientSecret string
	// RedirectURL is the callback registered at the provider; "" derives
	// it from each request: <scheme>://<host>/login/oidc/callback.
	RedirectURL string
	// Name is shown on the sign-in button; default the issuer's host.
	Name string
	// GroupsClaim, when set, names the ID-token claim listing the user's
	// groups: at each sign-in the user joins the existing teams of those
	// names and leaves the teams no longer listed.
	GroupsClaim string
	// HTTPClient reaches the provider; default http.DefaultClient.
	HTTPClient *http.Client
}

// OIDC paths; the UI registers them.
const (
	OIDCLoginPath    = "/login/oidc"
	OIDCCallbackPath = "/login/oidc/callback"
	// oidcCookie carries state, nonce and PKCE verifier from the redirect
	// to the provider until the callback, and nowhere else.
	oidcCookie = "opsbook_oidc"
	oidcMaxAge = 10 * time.Minute
)

// oidcClient is the configured provider, discovered on first use so that
// the server starts while the provider is unreachable.
type oidcClient struct {
	cfg OIDCConfig
	ctx context.Context // carries HTTPClient for go-oidc and oauth2

	mu       sync.Mutex
	provider *oidc.Provider
}

func newOIDCClient(cfg OIDCConfig) *oidcClient {
	if cfg.Name == "" {
		cfg.Name = cfg.Issuer
		if u, err := url.Parse(cfg.Issuer); err == nil && u.Host != "" {
			cfg.Name = u.Host
		}
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 15 * time.Second}
	}
	return &oidcClient{cfg: cfg, ctx: oidc.ClientContext(context.Background(), client)}
}

func (c *oidcClient) discover(ctx context.Context) (*oidc.Provider, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.provider != nil {
		return c.provider, nil
	}
	dctx, cancel := context.WithTimeout(c.ctx, 15*time.Second)
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	p, err := oidc.NewProvider(dctx, c.cfg.Issuer)
	if err != nil {
		return nil, Errorf(http.StatusBadGateway, "oidc_unavailable",
			"the identity provider %s did not answer discovery (%v); try again, or sign in with a name and password", c.cfg.Issuer, err)
	}
	c.provider = p
	return p, nil
}

func (c *oidcClient) oauth(p *oidc.Provider, redirect string) *oauth2.Config {
	return &oauth2.Config{ClientID: c.cfg.ClientID, ClientSecret: c.cfg.ClientSecret, Endpoint: p.Endpoint(),
		RedirectURL: redirect, Scopes: []string{oidc.ScopeOpenID, "profile", "email"}}
}

// oidcFlow is what the short-lived cookie holds between the redirect to
// the provider and the callback.
type oidcFlow struct {
	State    string `json:"state"`
	Nonce    string `json:"nonce"`
	Verifier string `json:"verifier"`
	Redirect string `json:"redirect"`
	Next     string `json:"next"`
}

// OIDCName is the provider's name for the sign-in button; "" when OIDC
// sign-in is not configured.
func (s *Server) OIDCName() string {
	if s.oidc == nil {
		return ""
	}
	return s.oidc.cfg.Name
}

// errOIDCOff answers the OIDC routes of a server without --oidc-issuer.
var errOIDCOff = Errorf(http.StatusNotFound, "oidc_not_configured",
	"sign-in with an identity provider is not configured on this server; sign in with a name and password, or start the server with --oidc-issuer and --oidc-client-id")

// BeginOIDC redirects the browser to the provider's authorization
// endpoint. State, nonce and PKCE verifier are fresh random values kept in
// an HttpOnly cookie for ten minutes; next is where to go after signing in.
func (s *Server) BeginOIDC(w http.ResponseWriter, r *http.Request, next string) error {
	if s.oidc == nil {
		return errOIDCOff
	}
	p, err := s.oidc.discover(r.Context())
	if err != nil {
		return err
	}
	flow := oidcFlow{State: auth.NewToken(), Nonce: auth.NewToken(), Verifier: oauth2.GenerateVerifier(),
		Redirect: s.oidcRedirect(r), Next: next}
	b, _ := json.Marshal(flow) // strings only: cannot fail
	http.SetCookie(w, &http.Cookie{Name: oidcCookie, Value: base64.RawURLEncoding.EncodeToString(b), Path: OIDCLoginPath,
		MaxAge: int(oidcMaxAge / time.Second), HttpOnly: true, Secure: s.SecureRequest(r),
		// Lax: the provider sends the browser back with a top-level GET,
		// which Lax cookies accompany and Strict ones would not.
		SameSite: http.SameSiteLaxMode})
	target := s.oidc.oauth(p, flow.Redirect).AuthCodeURL(flow.State, oidc.Nonce(flow.Nonce), oauth2.S256ChallengeOption(flow.Verifier))
	http.Redirect(w, r, target, http.StatusSeeOther)
	return nil
}

// oidcRedirect is the callback URL: the configured one, else this
// server's own address as the browser reached it.
func (s *Server) oidcRedirect(r *http.Request) string {
	if s.oidc.cfg.RedirectURL != "" {
		return s.oidc.cfg.RedirectURL
	}
	scheme := "http"
	if s.SecureRequest(r) {
		scheme = "https"
	}
	host := r.Host
	if s.cfg.TrustProxy {
		if h := r.Header.Get("X-Forwarded-Host"); h != "" {
			host = h
		}
	}
	return scheme + "://" + host + OIDCCallbackPath
}

// FinishOIDC completes a sign-in at the callback: it checks the state
// against the cookie, exchanges the code (with the PKCE verifier), verifies
// the ID token (signature, issuer, audience, expiry, nonce), finds or
// creates the user by issuer and subject, maps groups to teams when
// configured, and starts a session like Login. It returns where to go
// next. Every attempt is audited.
func (s *Server) FinishOIDC(w http.ResponseWriter, r *http.Request) (next string, err error) {
	if s.oidc == nil {
		return "", errOIDCOff
	}
	ctx := r.Context()
	remote := s.RemoteAddr(r)
	// The flow cookie is single-use, whatever the outcome.
	http.SetCookie(w, &http.Cookie{Name: oidcCookie, Path: OIDCLoginPath, MaxAge: -1, Expires: time.Unix(1, 0),
		HttpOnly: true, Secure: s.SecureRequest(r), SameSite: http.SameSiteLaxMode})
	refuse := func(who, reason string, status int, format string, args ...any) (string, error) {
		s.Audit(ctx, who, remote, "login.fail", "oidc/"+s.oidc.cfg.Issuer, map[string]string{"via": "oidc", "reason": reason})
		return "", Errorf(status, "oidc_failed", "sign-in with %s failed: %s; go back to /login and start again",
			s.oidc.cfg.Name, fmt.Sprintf(format, args...))
	}
	flow, ok := readOIDCFlow(r)
	if !ok {
		return refuse("anonymous", "no flow cookie", http.StatusBadRequest, "the sign-in took longer than %s or cookies are blocked", oidcMaxAge)
	}
	q := r.URL.Query()
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(flow.State)) != 1 {
		return refuse("anonymous", "state mismatch", http.StatusBadRequest, "the answer does not belong to this browser's sign-in (state mismatch)")
	}
	if e := q.Get("error"); e != "" {
		return refuse("anonymous", "provider error: "+e, http.StatusUnauthorized, "the provider answered %s: %s", e, q.Get("error_description"))
	}
	code := q.Get("code")
	if code == "" {
		return refuse("anonymous", "no code", http.StatusBadRequest, "the provider sent no authorization code")
	}
	p, err := s.oidc.discover(ctx)
	if err != nil {
		return "", err
	}
	xctx, cancel := context.WithTimeout(s.oidc.ctx, 15*time.Second)
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	tok, err := s.oidc.oauth(p, flow.Redirect).Exchange(xctx, code, oauth2.VerifierOption(flow.Verifier))
	if err != nil {
		return refuse("anonymous", "code exchange failed", http.StatusBadGateway, "exchanging the code at the provider: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return refuse("anonymous", "no id_token", http.StatusBadGateway, "the provider's token answer has no id_token")
	}
	verifier := p.VerifierContext(s.oidc.ctx, &oidc.Config{ClientID: s.oidc.cfg.ClientID, Now: s.now})
	idt, err := verifier.Verify(xctx, raw)
	if err != nil {
		return refuse("anonymous", "id_token refused: "+err.Error(), http.StatusUnauthorized, "the ID token is not valid: %v", err)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(flow.Nonce)) != 1 {
		return refuse(idt.Subject, "nonce mismatch", http.StatusUnauthorized, "the ID token was not issued for this sign-in (nonce mismatch)")
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return refuse(idt.Subject, "claims unreadable", http.StatusBadGateway, "reading the ID token's claims: %v", err)
	}
	u, created, err := s.oidcUser(ctx, idt.Issuer, idt.Subject, claims)
	if err != nil {
		return "", err
	}
	if u.Disabled {
		return refuse(u.Name, "disabled", http.StatusForbidden, "the user %s is disabled; ask an administrator", u.Name)
	}
	joined, left, err := s.syncOIDCTeams(ctx, u, claims)
	if err != nil {
		return "", err
	}
	if _, err := s.startSession(w, r, u); err != nil {
		return "", err
	}
	detail := map[string]string{"via": "oidc", "issuer": idt.Issuer, "subject": idt.Subject}
	if created {
		detail["created"] = "true"
	}
	if len(joined) > 0 {
		detail["joined"] = strings.Join(joined, ",")
	}
	if len(left) > 0 {
		detail["left"] = strings.Join(left, ",")
	}
	if err := s.Audit(ctx, u.Name, remote, "login", "user/"+u.Name, detail); err != nil {
		return "", err
	}
	return flow.Next, nil
}

func readOIDCFlow(r *http.Request) (oidcFlow, bool) {
	c, err := r.Cookie(oidcCookie)
	if err != nil {
		return oidcFlow{}, false
	}
	b, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil {
		return oidcFlow{}, false
	}
	var f oidcFlow
	if json.Unmarshal(b, &f) != nil || f.State == "" || f.Nonce == "" || f.Verifier == "" {
		return oidcFlow{}, false
	}
	return f, true
}

// oidcUser finds the user linked to issuer and subject, or creates one
// named from preferred_username, else the email, else the subject. A name
// a local user already holds is never taken over: the new user gets the
// first free "name-N" instead.
func (s *Server) oidcUser(ctx context.Context, issuer, subject string, claims map[string]any) (store.User, bool, error) {
	u, err := s.store.UserByIdentity(ctx, issuer, subject)
	if err == nil {
		return u, false, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return store.User{}, false, err
	}
	base := auth.NameFrom(claimString(claims, "preferred_username"))
	if base == "" {
		base = auth.NameFrom(claimString(claims, "email"))
	}
	if base == "" {
		base = auth.NameFrom(subject)
	}
	if base == "" {
		base = "oidc-user"
	}
	if len(base) > 60 {
		base = base[:60] // room for the "-N" of a taken name
	}
	display := claimString(claims, "name")
	for i := 1; i <= 100; i++ {
		name := base
		if i > 1 {
			name = fmt.Sprintf("%s-%d", base, i)
		}
		nu := store.User{Name: name, Display: display, CreatedAt: s.now()}
		err := s.store.CreateIdentityUser(ctx, &nu, issuer, subject)
		if err == nil {
			s.Audit(ctx, "system", "", "user.create", "user/"+name, map[string]string{"via": "oidc", "issuer": issuer, "subject": subject})
			return nu, true, nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return store.User{}, false, err
		}
		// Another sign-in of the same subject may have just created it.
		if u, err := s.store.UserByIdentity(ctx, issuer, subject); err == nil {
			return u, false, nil
		}
	}
	return store.User{}, false, Errorf(http.StatusConflict, "name_taken", "no free user name for %q; ask an administrator to rename a user", base)
}

// syncOIDCTeams makes the user's teams the existing teams named in the
// groups claim, when a groups claim is configured. Groups without a team
// of the same name are ignored: teams and their grants are made by an
// administrator, never by the provider.
func (s *Server) syncOIDCTeams(ctx context.Context, u store.User, claims map[string]any) (joined, left []string, err error) {
	if s.oidc.cfg.GroupsClaim == "" {
		return nil, nil, nil
	}
	groups := claimStrings(claims, s.oidc.cfg.GroupsClaim)
	teams, err := s.store.ListTeams(ctx)
	if err != nil {
		return nil, nil, err
	}
	for _, t := range teams {
		want := slices.Contains(groups, t.Name)
		has := slices.Contains(u.Teams, t.Name)
		switch {
		case want && !has:
			if err := s.store.AddTeamMember(ctx, t.Name, u.ID); err != nil {
				return nil, nil, err
			}
			joined = append(joined, t.Name)
		case !want && has:
			if err := s.store.RemoveTeamMember(ctx, t.Name, u.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
				return nil, nil, err
			}
			left = append(left, t.Name)
		}
	}
	return joined, left, nil
}

func claimString(claims map[string]any, name string) string {
	s, _ := claims[name].(string)
	return strings.TrimSpace(s)
}

// claimStrings reads a claim that is a list of strings or one string.
func claimStrings(claims map[string]any, name string) []string {
	switch v := claims[name].(type) {
	case string:
		return []string{v}
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}
