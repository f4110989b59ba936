package api_test

import (
	"net/url"
	"path/filepath"
	"strings"
	"testing"
)

// TestNameRule: users and teams are named by one rule whichever way they
// are made — the JSON API and the web form refuse the same names.
func TestNameRule(t *testing.T) {
	h := newHarness(t, filepath.Join(t.TempDir(), "server.db"))
	for _, name := range []string{"bad name", "../admin", "<b>x</b>"} {
		if r := h.do(admin, "POST", "/api/v1/users", map[string]any{"name": name, "password": "a long enough password 1"}); r.status != 400 {
			t.Errorf("API user %q: status %d, want 400 (%s)", name, r.status, r.body)
		}
		if r := h.do(admin, "POST", "/api/v1/teams", map[string]any{"name": name}); r.status != 400 {
			t.Errorf("API team %q: status %d, want 400 (%s)", name, r.status, r.body)
		}
		form := url.Values{"name": {name}, "password": {"a long enough password 1"}}
		if r := h.browse(h.creds[admin], "POST", "/admin/users", form); r.status != 400 {
			t.Errorf("form user %q: status %d, want 400", name, r.status)
		}
	}
	if r := h.do(admin, "POST", "/api/v1/users", map[string]any{"name": "Alice.Smith@example.com", "password": "a long enough password 1"}); r.status != 201 {
		t.Errorf("API user with an email-like name: status %d (%s)", r.status, r.body)
	}
	form := url.Values{"name": {"bob@example.com"}, "password": {"a long enough password 1"}}
	if r := h.browse(h.creds[admin], "POST", "/admin/users", form); r.status != 303 || !strings.Contains(r.header.Get("Location"), "saved") {
		t.Errorf("form user with an email-like name: status %d %v", r.status, r.header)
	}
}
