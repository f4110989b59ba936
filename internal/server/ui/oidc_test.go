package ui_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/auth/oidctest"
	"github.com/opsbook/opsbook/internal/server"
	"github.com/opsbook/opsbook/internal/store"
)

// oidcBrowser follows redirects and keeps cookies, as a browser does
// between opsbook and the identity provider.
type oidcBrowser struct {
	t      *testing.T
	client *http.Client
	base   string
}

func newOIDCBrowser(t *testing.T, base string) *oidcBrowser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &oidcBrowser{t: t, client: &http.Client{Jar: jar, Timeout: 20 * time.Second}, base: base}
}

// get returns the final status, URL and body after following redirects.
func (b *oidcBrowser) get(rawURL string) (int, *url.URL, string) {
	b.t.Helper()
	req, err := http.NewRequest("GET", rawURL, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Accept", "text/html")
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Request.URL, string(body)
}

func (b *oidcBrowser) sessionCookie() string {
	u, _ := url.Parse(b.base)
	for _, c := range b.client.Jar.Cookies(u) {
		if c.Name == server.SessionCookie {
			return c.Value
		}
	}
	return ""
}

func startOIDCServer(t *testing.T, idp *oidctest.Provider, groupsClaim string) *testServer {
	return startServerWith(t, func(c *server.Config) {
		c.OIDC = &server.OIDCConfig{Issuer: idp.URL, ClientID: oidctest.ClientID, ClientSecret: oidctest.ClientSecret,
			Name: "TestIdP", GroupsClaim: groupsClaim}
	})
}

// TestOIDCSignIn signs in through a provider written in the test
// (internal/auth/oidctest: a real one cannot run here, there is no
// network): discovery, authorization with PKCE, code exchange, ID-token
// verification, the user created by issuer and subject and found again by
// them, teams from the groups claim, the session cookie, and the audit
// entries.
func TestOIDCSignIn(t *testing.T) {
	idp := oidctest.New(t)
	ts := startOIDCServer(t, idp, "groups")
	ctx := context.Background()
	for _, team := range []string{"dba", "oncall"} {
		if _, err := ts.st.CreateTeam(ctx, team); err != nil {
			t.Fatal(err)
		}
	}
	if err := ts.st.CreateGrant(ctx, &auth.Grant{Team: "dba", Permission: auth.RunbookView}); err != nil {
		t.Fatal(err)
	}

	b := newOIDCBrowser(t, ts.url)
	status, _, body := b.get(ts.url + "/login")
	if status != 200 || !strings.Contains(body, "Sign in with TestIdP") || !strings.Contains(body, `href="/login/oidc"`) {
		t.Fatalf("sign-in page (status %d) offers no OIDC button:\n%s", status, body)
	}

	// "alice" is a local user already: the provider's alice must not
	// become her.
	idp.SignIn(oidctest.Person{Subject: "sub-carol", Claims: map[string]any{
		"preferred_username": "alice", "email": "carol@example.com", "name": "Carol",
		"groups": []string{"dba", "oncall", "no-such-team"}}})
	status, final, body := b.get(ts.url + "/login/oidc?next=/board")
	if status != 200 || final.Path != "/board" {
		t.Fatalf("after sign-in: status %d at %s, want the board\n%s", status, final, body)
	}
	if b.sessionCookie() == "" {
		t.Fatal("no session cookie after sign-in")
	}
	u, err := ts.st.UserByIdentity(ctx, idp.URL, "sub-carol")
	if err != nil {
		t.Fatal(err)
	}
	if u.Name != "alice-2" || u.Display != "Carol" || u.PasswordHash != "" {
		t.Errorf("created user %+v, want alice-2 (alice is taken), display Carol, no password", u)
	}
	if !slices.Equal(u.Teams, []string{"dba", "oncall"}) {
		t.Errorf("teams %v, want [dba oncall] (no-such-team does not exist and is not created)", u.Teams)
	}
	if !strings.Contains(body, "alice-2") {
		t.Errorf("the board does not show the signed-in user alice-2")
	}

	// The second sign-in finds the same user by subject, whatever the
	// name claims now say, and follows the groups: oncall is left.
	idp.SignIn(oidctest.Person{Subject: "sub-carol", Claims: map[string]any{
		"preferred_username": "carol", "groups": []string{"dba"}}})
	b2 := newOIDCBrowser(t, ts.url)
	if status, final, _ := b2.get(ts.url + "/login/oidc"); status != 200 || final.Path != "/" {
		t.Fatalf("second sign-in: status %d at %s", status, final)
	}
	again, err := ts.st.UserByIdentity(ctx, idp.URL, "sub-carol")
	if err != nil {
		t.Fatal(err)
	}
	if again.ID != u.ID || !slices.Equal(again.Teams, []string{"dba"}) {
		t.Errorf("second sign-in: user %d teams %v, want user %d in [dba]", again.ID, again.Teams, u.ID)
	}

	entries, err := ts.st.ListAudit(ctx, store.AuditFilter{Action: "login", Actor: "alice-2"})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 || entries[0].Detail["via"] != "oidc" || entries[0].Detail["left"] != "oncall" ||
		entries[1].Detail["created"] != "true" || entries[1].Detail["subject"] != "sub-carol" {
		t.Errorf("audit of the sign-ins: %+v", entries)
	}

	// A password cannot sign in as the OIDC user: there is none.
	resp, err := http.PostForm(ts.url+"/login", url.Values{"name": {"alice-2"}, "password": {""}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusSeeOther {
		t.Error("alice-2 signed in with an empty password")
	}
}

// TestOIDCRefusals: each tampered answer is refused with a message on the
// sign-in page, no session is started, and the refusal is audited.
func TestOIDCRefusals(t *testing.T) {
	idp := oidctest.New(t)
	ts := startOIDCServer(t, idp, "")
	idp.SignIn(oidctest.Person{Subject: "sub-mallory", Claims: map[string]any{"preferred_username": "mallory"}})

	cases := []struct {
		name   string
		tamper func(map[string]any)
		// callback, when set, replaces the provider's redirect back.
		callback func(b *oidcBrowser) (int, string)
		status   int
		message  string
	}{
		{name: "wrong nonce", tamper: func(c map[string]any) { c["nonce"] = "someone-elses-nonce" },
			status: 401, message: "nonce mismatch"},
		{name: "wrong audience", tamper: func(c map[string]any) { c["aud"] = "another-client" },
			status: 401, message: "audience"},
		{name: "expired token", tamper: func(c map[string]any) {
			c["iat"] = time.Now().Add(-2 * time.Hour).Unix()
			c["exp"] = time.Now().Add(-time.Hour).Unix()
		}, status: 401, message: "expired"},
		{name: "wrong issuer", tamper: func(c map[string]any) { c["iss"] = "https://evil.example" },
			status: 401, message: "issued by a different provider"},
		{name: "bad state", callback: func(b *oidcBrowser) (int, string) {
			// Start a flow for the cookie, then arrive with another state.
			stop := &http.Client{Jar: b.client.Jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			resp, err := stop.Get(ts.url + "/login/oidc")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			status, _, body := b.get(ts.url + "/login/oidc/callback?code=x&state=forged")
			return status, body
		}, status: 400, message: "state mismatch"},
		{name: "no flow cookie", callback: func(b *oidcBrowser) (int, string) {
			status, _, body := b.get(ts.url + "/login/oidc/callback?code=x&state=y")
			return status, body
		}, status: 400, message: "cookies are blocked"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			idp.Tamper(c.tamper)
			defer idp.Tamper(nil)
			b := newOIDCBrowser(t, ts.url)
			var status int
			var body string
			if c.callback != nil {
				status, body = c.callback(b)
			} else {
				status, _, body = b.get(ts.url + "/login/oidc")
			}
			if status != c.status || !strings.Contains(body, c.message) || !strings.Contains(body, `id="login-error"`) {
				t.Errorf("status %d, want %d with %q on the sign-in page:\n%s", status, c.status, c.message, body)
			}
			if b.sessionCookie() != "" {
				t.Error("a session cookie was set")
			}
		})
	}
	if _, err := ts.st.UserByIdentity(context.Background(), idp.URL, "sub-mallory"); err == nil {
		t.Error("a refused sign-in created the user")
	}
	fails, err := ts.st.ListAudit(context.Background(), store.AuditFilter{Action: "login.fail"})
	if err != nil {
		t.Fatal(err)
	}
	if len(fails) != len(cases) {
		t.Errorf("%d login.fail audit entries, want %d", len(fails), len(cases))
	}
}

// TestOIDCOff: without --oidc-issuer the sign-in page offers no provider
// and the OIDC routes answer 404.
func TestOIDCOff(t *testing.T) {
	ts := startServer(t)
	b := newOIDCBrowser(t, ts.url)
	if _, _, body := b.get(ts.url + "/login"); strings.Contains(body, "sign-in-oidc") {
		t.Error("the sign-in page offers OIDC although it is not configured")
	}
	for _, path := range []string{"/login/oidc", "/login/oidc/callback?code=x&state=y"} {
		if status, _, _ := b.get(ts.url + path); status != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", path, status)
		}
	}
}
