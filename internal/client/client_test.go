package client_test

import (
	"bytes"
	"context"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/client"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/secret"
	"github.com/opsbook/opsbook/internal/server"
	"github.com/opsbook/opsbook/internal/server/api"
	"github.com/opsbook/opsbook/internal/store"
)

// TestClientAgainstServer drives a real server (SQLite) through the
// client: log in, create a key, start a run, stream it through a gate to
// its end, and verify the audit log.
func TestClientAgainstServer(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "server.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	keys, _ := secret.NewKeyring("t", bytes.Repeat([]byte{1}, secret.KeySize))
	ws, _ := filepath.Abs("../server/api/testdata/workspace")
	srv, err := server.New(server.Config{Store: st, Workspace: ws, Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	api.Register(srv)
	hs := httptest.NewServer(srv)
	defer hs.Close()
	defer srv.Shutdown(ctx)

	hash, _ := auth.HashPassword("admin's long password")
	admin := &store.User{Name: "admin", PasswordHash: hash}
	if err := st.CreateUser(ctx, admin); err != nil {
		t.Fatal(err)
	}
	st.CreateTeam(ctx, "admins")
	st.AddTeamMember(ctx, "admins", admin.ID)
	st.CreateGrant(ctx, &auth.Grant{Team: "admins", Permission: auth.Admin})

	if _, err := client.Login(ctx, hs.URL, "admin", "wrong password!", "k"); !client.IsStatus(err, 401) {
		t.Fatalf("wrong password: %v", err)
	}
	key, err := client.Login(ctx, hs.URL, "admin", "admin's long password", "test")
	if err != nil || !auth.IsAPIKey(key) {
		t.Fatalf("login: %q %v", key, err)
	}
	c, err := client.New(hs.URL, key)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.StartRun(ctx, client.StartRequest{Runbook: "ops/runbooks/payments-backup.md", Environment: "staging"})
	if !client.IsStatus(err, 400) || !strings.Contains(err.Error(), "TOKEN") {
		t.Fatalf("missing required param: %v", err)
	}
	run, err := c.StartRun(ctx, client.StartRequest{Runbook: "ops/runbooks/payments-backup.md", Environment: "staging", Params: map[string]string{"TOKEN": "tok-123456"}})
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var seen []runbook.EventType
	var out strings.Builder
	status, err := c.Stream(sctx, run.ID, 0, func(ev runbook.Event) error {
		seen = append(seen, ev.Type)
		if ev.Type == runbook.EventStepOutput {
			out.WriteString(ev.Text)
		}
		if ev.Type == runbook.EventGateWaiting {
			// Admin started it in a non-protected environment: self-approval is allowed there.
			if _, err := c.Gate(sctx, run.ID, "go", "looks good"); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if status != runbook.RunSucceeded {
		t.Fatalf("status %s, events %v", status, seen)
	}
	if !strings.Contains(out.String(), "finished") || strings.Contains(out.String(), "tok-123456") {
		t.Fatalf("output %q", out.String())
	}
	runs, _, err := c.ListRuns(ctx, client.RunFilter{Limit: 10})
	if err != nil || len(runs) != 1 || runs[0].ID != run.ID {
		t.Fatalf("list: %v %v", runs, err)
	}
	d, err := c.GetRun(ctx, run.ID[:8])
	if err != nil || d.State == nil || d.State.Status != runbook.RunSucceeded {
		t.Fatalf("get by prefix: %+v %v", d, err)
	}
	n := 0
	if err := c.AllEvents(ctx, run.ID, func(runbook.Event) error { n++; return nil }); err != nil || n != len(seen) {
		t.Fatalf("all events: %d vs streamed %d (%v)", n, len(seen), err)
	}
	v, err := c.VerifyAudit(ctx)
	if err != nil || !v.OK || v.Checked < 3 {
		t.Fatalf("verify: %+v %v", v, err)
	}
}
