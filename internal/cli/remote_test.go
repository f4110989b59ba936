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

func TestRemoteRunShowRuns(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "server.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	keys, _ := secret.NewKeyring("t", bytes.Repeat([]byte{3}, secret.KeySize))
	ws, _ := filepath.Abs("../server/api/testdata/workspace")
	srv, err := server.New(server.Config{Store: st, Workspace: ws, Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	api.Register(srv)
	hs := httptest.NewServer(srv)
	defer hs.Close()
	defer srv.Shutdown(ctx)
	u := &store.User{Name: "ops"}
	st.CreateUser(ctx, u)
	st.CreateTeam(ctx, "ops")
	st.AddTeamMember(ctx, "ops", u.ID)
	st.CreateGrant(ctx, &auth.Grant{Team: "ops", Permission: auth.Admin})
	key := auth.NewAPIKey()
	st.CreateAPIKey(ctx, &store.APIKey{UserID: u.ID, Name: "t", KeyHash: auth.HashToken(key), Hint: "obk_"})
	c, _ := client.New(hs.URL, key)

	var out, errb bytes.Buffer
	e := &env{stdout: &out, stderr: &errb}
	err = runRemote(ctx, e, c, client.StartRequest{Runbook: "ops/runbooks/payments-backup.md", Environment: "staging", Params: map[string]string{"TOKEN": "hunter2-secret"}}, "text", true)
	if err != nil {
		t.Fatalf("run: %v\n%s\n%s", err, out.String(), errb.String())
	}
	text := out.String()
	for _, want := range []string{"▶ dump", "dump │ dumping nightly with token ***", "⏸ go: gate.waiting", "✓ go: go by ops: --yes", "✓ finish succeeded", "succeeded\n"} {
		if !strings.Contains(text, want) {
			t.Errorf("live view lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "hunter2-secret") {
		t.Fatal("secret printed")
	}
	// A bad parameter is bad input (exit 2).
	err = runRemote(ctx, e, c, client.StartRequest{Runbook: "ops/runbooks/payments-backup.md", Environment: "staging"}, "text", true)
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
	if err := showRemote(ctx, e, c, id, "text"); err != nil || !strings.Contains(out.String(), "environment staging") || !strings.Contains(out.String(), "✓ dump succeeded") {
		t.Fatalf("show: %v\n%s", err, out.String())
	}
}
