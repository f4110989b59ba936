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
	"github.com/opsbook/opsbook/internal/client"
	"github.com/opsbook/opsbook/internal/secret"
	"github.com/opsbook/opsbook/internal/server"
	"github.com/opsbook/opsbook/internal/server/api"
	"github.com/opsbook/opsbook/internal/store"
)

// testServer serves ../server/api/testdata/workspace over HTTP from this
// process, with an admin user "ops" and an API key for it.
func testServer(t *testing.T, ctx context.Context) (url, key string) {
	t.Helper()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "server.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	keys, _ := secret.NewKeyring("t", bytes.Repeat([]byte{3}, secret.KeySize))
	ws, _ := filepath.Abs("../server/api/testdata/workspace")
	srv, err := server.New(server.Config{Store: st, Workspace: ws, Keys: keys})
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
	u := &store.User{Name: "ops"}
	st.CreateUser(ctx, u)
	st.CreateTeam(ctx, "ops")
	st.AddTeamMember(ctx, "ops", u.ID)
	st.CreateGrant(ctx, &auth.Grant{Team: "ops", Permission: auth.Admin})
	key = auth.NewAPIKey()
	st.CreateAPIKey(ctx, &store.APIKey{UserID: u.ID, Name: "t", KeyHash: auth.HashToken(key), Hint: "obk_"})
	return hs.URL, key
}

func TestRemoteRunShowRuns(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	url, key := testServer(t, ctx)
	c, _ := client.New(url, key)

	var out, errb bytes.Buffer
	e := &env{stdout: &out, stderr: &errb}
	err := runRemote(ctx, e, c, client.StartRequest{Runbook: "ops/runbooks/payments-backup.md", Environment: "staging", Params: map[string]string{"TOKEN": "hunter2-secret"}}, "text", true, nil, nil)
	if err != nil {
		t.Fatalf("run: %v\n%s\n%s", err, out.String(), errb.String())
	}
	// The same line-oriented view as a local run.
	text := out.String()
	for _, want := range []string{"-> [dump] \n", "[dump] dumping nightly with token ***", "?? [go] Go/No-Go (1 distinct approver(s)): Go when the dump is complete.", "!! [go] go by ops: --yes", "<- [finish] succeeded", "== run succeeded"} {
		if !strings.Contains(text, want) {
			t.Errorf("the view lacks %q:\n%s", want, text)
		}
	}
	if !strings.HasSuffix(errb.String(), " succeeded\n") || !strings.Contains(errb.String(), "in staging on the server") {
		t.Errorf("stderr: %s", errb.String())
	}
	if strings.Contains(text+errb.String(), "hunter2-secret") {
		t.Fatal("secret printed")
	}
	// A bad parameter is bad input (exit 2).
	err = runRemote(ctx, e, c, client.StartRequest{Runbook: "ops/runbooks/payments-backup.md", Environment: "staging"}, "text", true, nil, nil)
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != ExitBadInput {
		t.Fatalf("missing param: %v", err)
	}
	out.Reset()
	if err := runsRemote(ctx, e, c, client.RunFilter{}, "text"); err != nil || !strings.Contains(out.String(), "succeeded") {
		t.Fatalf("runs: %v\n%s", err, out.String())
	}
	id := strings.Fields(strings.Split(out.String(), "\n")[1])[0]
	out.Reset()
	if err := showRemote(ctx, e, c, id, "text"); err != nil || !strings.Contains(out.String(), "Runbook ops/runbooks/payments-backup.md in staging") || !strings.Contains(out.String(), "<- [dump] succeeded") ||
		!strings.Contains(out.String(), "Status: succeeded") {
		t.Fatalf("show: %v\n%s", err, out.String())
	}
	// Step titles come from the server (the run's snapshot), not from a
	// local copy of the runbook: this test's directory has none.
	if !strings.Contains(out.String(), "-> [dump] Dump") || !strings.Contains(out.String(), "go — Go or no-go") {
		t.Errorf("show of a server run lacks the step titles:\n%s", out.String())
	}
}

// TestRemoteResumeFailedOnly: the server offers no --failed-only, so the
// flag is refused before anything is asked of it rather than ignored.
func TestRemoteResumeFailedOnly(t *testing.T) {
	t.Setenv("OPSBOOK_SERVER", "http://127.0.0.1:1") // never reached
	t.Setenv("OPSBOOK_API_KEY", "key")
	var out, errb bytes.Buffer
	code := Main(t.Context(), []string{"resume", "r-1", "--failed-only"}, strings.NewReader(""), &out, &errb)
	if code != ExitBadInput || !strings.Contains(errb.String(), "--failed-only") {
		t.Fatalf("exit %d, want %d; stderr: %s", code, ExitBadInput, errb.String())
	}
}
