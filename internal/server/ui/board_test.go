package ui_test

import (
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// signIn signs name in through the sign-in form and returns its session cookie.
func (ts *testServer) signIn(t testing.TB, name string) *http.Cookie {
	t.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.PostForm(ts.url+"/login", url.Values{"name": {name}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in as %s: status %d, want 303", name, resp.StatusCode)
	}
	for _, c := range resp.Cookies() {
		if c.Name == "opsbook_session" {
			return c
		}
	}
	t.Fatalf("sign in as %s: no session cookie", name)
	return nil
}

// TestBoardNeeds checks that the board lists what a task still needs as
// the lifecycle gates decide it for the workspace's protected environment
// (here: no reviewers, no rehearsal, so only the checklist).
func TestBoardNeeds(t *testing.T) {
	ts := startServer(t)
	const task = "2026-03-10-postgres-upgrade-v12-to-v15"
	if err := os.CopyFS(filepath.Join(ts.ws, "ops", "active", task), os.DirFS(filepath.Join("..", "..", "..", "examples", "workspace", "ops", "active", task))); err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest("GET", ts.url+"/board", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.AddCookie(ts.signIn(t, "victor"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	body := string(b)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /board: status %d\n%s", resp.StatusCode, body)
	}
	for _, want := range []string{task, "production: pre-execution checklist: tick "} {
		if !strings.Contains(body, want) {
			t.Errorf("board does not show %q:\n%s", want, body)
		}
	}
	for _, unwanted := range []string{"reviews:", "rehearsal:"} {
		if strings.Contains(body, unwanted) {
			t.Errorf("board shows %q, which production does not require:\n%s", unwanted, body)
		}
	}
}
