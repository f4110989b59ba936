package cli

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/secret"
	"github.com/opsbook/opsbook/internal/server"
	"github.com/opsbook/opsbook/internal/server/api"
	"github.com/opsbook/opsbook/internal/store"
	"github.com/opsbook/opsbook/internal/workspace"
)

// serveTaskWorkspace serves the workspace dir over HTTP from this process and
// returns its URL and an API key per user, each user holding perms.
func serveTaskWorkspace(t *testing.T, dir string, users map[string][]auth.Permission) (string, map[string]string) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "server.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	keys, _ := secret.NewKeyring("t", bytes.Repeat([]byte{3}, secret.KeySize))
	srv, err := server.New(server.Config{Store: st, Workspace: dir, Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	api.Register(srv)
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		hs.Close()
	})
	out := map[string]string{}
	for name, perms := range users {
		u := &store.User{Name: name}
		if err := st.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		if _, err := st.CreateTeam(ctx, name); err != nil {
			t.Fatal(err)
		}
		if err := st.AddTeamMember(ctx, name, u.ID); err != nil {
			t.Fatal(err)
		}
		for _, p := range perms {
			if err := st.CreateGrant(ctx, &auth.Grant{Team: name, Permission: p}); err != nil {
				t.Fatal(err)
			}
		}
		key := auth.NewAPIKey()
		if err := st.CreateAPIKey(ctx, &store.APIKey{UserID: u.ID, Name: "t", KeyHash: auth.HashToken(key), Hint: "obk_"}); err != nil {
			t.Fatal(err)
		}
		out[name] = key
	}
	return hs.URL, out
}

// TestReviewThroughServer: without a server, one person approving under
// two git addresses meets "two reviewers" (that is all such a workspace
// can know; it is labelled unverified). Once the workspace has a server,
// opsbook review / check / status go through it: the same two git-email
// approvals count for nothing in production (fault: a self-claimed
// identity), a user approving twice counts once (fault: a repeated
// review), a viewer's review is refused with exit 5 (fault: no grant).
func TestReviewThroughServer(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("OPSBOOK_STATE_DIR", "")
	t.Setenv("OPSBOOK_SERVER", "")
	t.Setenv("OPSBOOK_API_KEY", "")
	as(t, "ann@example.com")
	t.Setenv("OPSBOOK_NOW", "2025-03-01T07:30:00Z")
	if code, out, errOut := runCLI(t, dir, "init"); code != ExitOK {
		t.Fatalf("init = %d %s%s", code, out, errOut)
	}
	writeFile(t, filepath.Join(dir, "opsbook.yaml"), lifecycleConfig)
	task := "2025-03-01-redis-restart-cluster"
	if code, out, errOut := runCLI(t, "", "new", "redis restart cluster", "--date", "2025-03-01", "--library", "generic"); code != ExitOK {
		t.Fatalf("new = %d %s%s", code, out, errOut)
	}

	// Mallory, alone, as two git identities.
	for _, email := range []string{"mallory@example.com", "mallory.2@example.com"} {
		as(t, email)
		code, out, errOut := runCLI(t, "", "review", task, "--approve")
		if code != ExitOK || !strings.Contains(out, "unverified") {
			t.Fatalf("local review as %s = %d %s%s, want it labelled unverified", email, code, out, errOut)
		}
	}
	if rep := statusJSON(t, task); !gate(rep, "reviews").Met || rep.Verified {
		t.Fatalf("without a server the git-email reviews count: %+v", gate(rep, "reviews"))
	}
	if code, out, _ := runCLI(t, "", "check", task, "backups-done"); code != ExitOK || !strings.Contains(out, "unverified") {
		t.Fatalf("local check = %d %s, want it labelled unverified", code, out)
	}

	url, keys := serveTaskWorkspace(t, dir, map[string][]auth.Permission{
		"bob":    {auth.RunbookView, auth.RunbookApprove, auth.RunbookRun},
		"carol":  {auth.RunbookView, auth.RunbookApprove},
		"viewer": {auth.RunbookView},
	})
	t.Setenv("OPSBOOK_SERVER", url)
	t.Setenv("OPSBOOK_API_KEY", "")
	if code, _, errOut := runCLI(t, "", "review", task, "--approve"); code != ExitBadInput || !strings.Contains(errOut, "OPSBOOK_API_KEY") {
		t.Fatalf("server without a key = %d %s, want exit 2 naming OPSBOOK_API_KEY", code, errOut)
	}
	t.Setenv("OPSBOOK_API_KEY", keys["viewer"])
	code, out, errOut := runCLI(t, "", "status", task)
	if code != ExitOK || !strings.Contains(out, "[ ] reviews") || !strings.Contains(out, "0 of 2 approvals") ||
		!strings.Contains(out, "2 unverified git-email approval(s)") || !strings.Contains(out, "Unverified reviews") || !strings.Contains(out, "[ ] backups-done") {
		t.Fatalf("status with a server = %d:\n%s%s\nwant the git-email reviews and tick uncounted", code, out, errOut)
	}
	if code, _, errOut := runCLI(t, "", "review", task, "--approve"); code != ExitRefused || !strings.Contains(errOut, "RunbookApprove") {
		t.Fatalf("viewer reviews = %d %s, want exit 5 (403) naming RunbookApprove", code, errOut)
	}

	t.Setenv("OPSBOOK_API_KEY", keys["bob"])
	for i, want := range []string{"bob approved snapshot", "replaces your earlier review"} {
		code, out, errOut := runCLI(t, "", "review", task, "--approve", "--comment", "ok")
		if code != ExitOK || !strings.Contains(out, want) || !strings.Contains(out, "verified: signed in to "+url) || !strings.Contains(out, "1 of 2 approvals") {
			t.Fatalf("bob's review #%d = %d %s%s, want %q and 1 of 2", i+1, code, out, errOut, want)
		}
	}
	if code, out, errOut := runCLI(t, "", "check", task, "backups-done", "--note", "dump restored"); code != ExitOK || !strings.Contains(out, "bob ticked backups-done (verified") {
		t.Fatalf("check through the server = %d %s%s", code, out, errOut)
	}
	if code, out, _ := runCLI(t, "", "check", task); code != ExitOK || !strings.Contains(out, "backups-done") || !strings.Contains(out, "bob (verified)") {
		t.Errorf("check list through the server = %d:\n%s", code, out)
	}
	if code, _, errOut := runCLI(t, "", "check", task, "no-such-item"); code != ExitBadInput {
		t.Errorf("unknown item = %d %s, want 2", code, errOut)
	}
	t.Setenv("OPSBOOK_API_KEY", keys["carol"])
	if code, out, errOut := runCLI(t, "", "review", task, "--approve"); code != ExitOK || !strings.Contains(out, "2 of 2 approvals") {
		t.Fatalf("carol's review = %d %s%s", code, out, errOut)
	}
	rep := statusJSON(t, task)
	if g := gate(rep, "reviews"); !g.Met || !rep.Verified || !strings.Contains(g.Detail, "bob, carol") {
		t.Errorf("status after bob and carol: %+v verified=%v", g, rep.Verified)
	}
}

// TestWorkspaceDeclaresServer: opsbook.yaml's server: makes the server the
// workspace's for every local command, without OPSBOOK_SERVER. A local run
// in production then counts only the server's reviews: one person's two
// git-email approvals (fault: a self-claimed identity, and a local run to
// get around the server) leave its reviews gate unmet, and without a key
// to ask the server the run is refused (exit 5) — as is a local review.
func TestWorkspaceDeclaresServer(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("OPSBOOK_STATE_DIR", "")
	t.Setenv("OPSBOOK_SERVER", "")
	t.Setenv("OPSBOOK_API_KEY", "")
	as(t, "ann@example.com")
	t.Setenv("OPSBOOK_NOW", "2025-03-01T07:30:00Z")
	if code, out, errOut := runCLI(t, dir, "init"); code != ExitOK {
		t.Fatalf("init = %d %s%s", code, out, errOut)
	}
	writeFile(t, filepath.Join(dir, "opsbook.yaml"), lifecycleConfig)
	task := "2025-03-01-redis-restart-cluster"
	if code, out, errOut := runCLI(t, "", "new", "redis restart cluster", "--date", "2025-03-01", "--library", "generic"); code != ExitOK {
		t.Fatalf("new = %d %s%s", code, out, errOut)
	}
	for _, email := range []string{"mallory@example.com", "mallory.2@example.com"} {
		as(t, email)
		if code, out, errOut := runCLI(t, "", "review", task, "--approve"); code != ExitOK {
			t.Fatalf("local review as %s = %d %s%s", email, code, out, errOut)
		}
	}
	rel := filepath.ToSlash(filepath.Join(workspace.ActiveDir, task, task+"-runbook.md"))
	admit := func() (string, error) {
		t.Helper()
		ws, err := workspace.Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		var out strings.Builder
		_, err = admitTaskRun(&env{stdout: &out, stderr: &out}, ws, rel, "production", "")
		return out.String(), err
	}
	if out, _ := admit(); !strings.Contains(out, "[x] reviews") {
		t.Fatalf("without a server the two git-email approvals meet the reviews gate:\n%s", out)
	}

	url, keys := serveTaskWorkspace(t, dir, map[string][]auth.Permission{"bob": {auth.RunbookView, auth.RunbookApprove}})
	writeFile(t, filepath.Join(dir, "opsbook.yaml"), strings.Replace(lifecycleConfig, "lang: en\n", "lang: en\nserver: "+url+"/\n", 1))

	_, err := admit()
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != ExitRefused || !strings.Contains(err.Error(), "OPSBOOK_API_KEY") || !strings.Contains(err.Error(), "server: "+url) {
		t.Fatalf("local production run without a key to the declared server: %v, want exit 5 naming OPSBOOK_API_KEY and the server", err)
	}
	if code, _, errOut := runCLI(t, "", "review", task, "--approve"); code != ExitBadInput || !strings.Contains(errOut, "opsbook.yaml server:") {
		t.Fatalf("local review in a workspace with a server, no key = %d %s, want exit 2 naming opsbook.yaml server:", code, errOut)
	}

	t.Setenv("OPSBOOK_API_KEY", keys["bob"])
	out, err := admit()
	if !errors.As(err, &ee) || ee.Code != ExitRefused || !strings.Contains(out, "[ ] reviews") || !strings.Contains(out, "0 of 2 approvals") {
		t.Fatalf("local production run, two git-email approvals, server declared: %v\n%s\nwant the reviews gate unmet", err, out)
	}
	if code, out, errOut := runCLI(t, "", "review", task, "--approve"); code != ExitOK || !strings.Contains(out, "verified: signed in to "+url) {
		t.Fatalf("review with the declared server = %d %s%s", code, out, errOut)
	}
	if out, _ := admit(); !strings.Contains(out, "1 of 2 approvals") || !strings.Contains(out, "(bob)") {
		t.Errorf("local production run after bob's review through the server:\n%s", out)
	}

	writeFile(t, filepath.Join(dir, "opsbook.yaml"), strings.Replace(lifecycleConfig, "lang: en\n", "lang: en\nserver: ftp://example.com\n", 1))
	if code, _, errOut := runCLI(t, "", "status", task); code != ExitBadInput || !strings.Contains(errOut, "opsbook.yaml:3:") || !strings.Contains(errOut, "server") {
		t.Errorf("server: ftp://… = %d %s, want exit 2 at opsbook.yaml:3", code, errOut)
	}
}
