package store_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/opsbook/opsbook/internal/audit"
	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/store"
	"github.com/opsbook/opsbook/internal/store/storetest"
)

func TestIdentityEntities(t *testing.T) {
	storetest.ForEachDialect(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		alice := &store.User{Name: "alice", PasswordHash: "$argon2id$x"}
		if err := s.CreateUser(ctx, alice); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateUser(ctx, &store.User{Name: "alice"}); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("duplicate user: %v", err)
		}
		if _, err := s.CreateTeam(ctx, "dba"); err != nil {
			t.Fatal(err)
		}
		if err := s.AddTeamMember(ctx, "dba", alice.ID); err != nil {
			t.Fatal(err)
		}
		if err := s.AddTeamMember(ctx, "dba", alice.ID); err != nil {
			t.Fatalf("second add must be a no-op: %v", err)
		}
		g := &auth.Grant{Team: "dba", Permission: auth.RunbookRun, Projects: []string{"payments"}}
		if err := s.CreateGrant(ctx, g); err != nil {
			t.Fatal(err)
		}
		p, err := s.Principal(ctx, alice.ID, auth.ViaSession)
		if err != nil {
			t.Fatal(err)
		}
		if !p.Can(auth.RunbookRun, auth.Scope{Project: "payments", Environment: "prod"}) || p.Can(auth.RunbookRun, auth.Scope{Project: "search"}) {
			t.Fatalf("principal grants: %+v", p.Grants)
		}
		if len(p.Teams) != 1 || p.Teams[0] != "dba" {
			t.Fatalf("teams %v", p.Teams)
		}

		now := time.Now()
		if err := s.CreateSession(ctx, store.Session{TokenHash: "h1", UserID: alice.ID, CSRF: "c", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if sess, err := s.GetSession(ctx, "h1", now); err != nil || sess.UserID != alice.ID || sess.CSRF != "c" {
			t.Fatalf("%+v %v", sess, err)
		}
		if _, err := s.GetSession(ctx, "h1", now.Add(2*time.Hour)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("expired session: %v", err)
		}
		k := &store.APIKey{UserID: alice.ID, Name: "ci", KeyHash: "kh", Hint: "obk_abcd"}
		if err := s.CreateAPIKey(ctx, k); err != nil {
			t.Fatal(err)
		}
		if got, err := s.APIKeyByHash(ctx, "kh", now); err != nil || got.User != "alice" {
			t.Fatalf("%+v %v", got, err)
		}
		if err := s.DeleteUser(ctx, alice.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.APIKeyByHash(ctx, "kh", now); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("key of deleted user: %v", err)
		}
	})
}

func TestAuditChainInStore(t *testing.T) {
	storetest.ForEachDialect(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if r, err := s.VerifyAudit(ctx); err != nil || r.Problem != nil || r.Checked != 0 {
			t.Fatalf("empty log: %+v %v", r, err)
		}
		for i := 0; i < 5; i++ {
			if _, err := s.AppendAudit(ctx, audit.Entry{Actor: "alice", Action: "run.start", Target: "run/x", Detail: map[string]string{"i": string(rune('0' + i))}}); err != nil {
				t.Fatal(err)
			}
		}
		if r, err := s.VerifyAudit(ctx); err != nil || r.Problem != nil || r.Checked != 5 {
			t.Fatalf("intact log: %+v %v", r, err)
		}
		if _, err := store.ExecForTest(s, ctx, `UPDATE audit_log SET actor = 'mallory' WHERE seq = 3`); err != nil {
			t.Fatal(err)
		}
		r, err := s.VerifyAudit(ctx)
		if err != nil || r.Problem == nil || r.Problem.Seq != 3 {
			t.Fatalf("edited row: %+v %v", r, err)
		}
		es, err := s.ListAudit(ctx, store.AuditFilter{Action: "run.", Limit: 2})
		if err != nil || len(es) != 2 || es[0].Seq != 5 {
			t.Fatalf("list: %+v %v", es, err)
		}
	})
}

func TestVariablesSnapshotsTriggers(t *testing.T) {
	storetest.ForEachDialect(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		for _, v := range []store.Variable{
			{Name: "REGION", Value: "eu", UpdatedBy: "a"},
			{Environment: "prod", Name: "REGION", Value: "us", UpdatedBy: "a"},
			{Environment: "prod", Name: "TOKEN", Value: "obs1.sealed", Sensitive: true, UpdatedBy: "a"},
			{Environment: "dev", Name: "DEBUG", Value: "1", UpdatedBy: "a"},
		} {
			if err := s.SetVariable(ctx, v); err != nil {
				t.Fatal(err)
			}
		}
		vs, err := s.VariablesFor(ctx, "prod")
		if err != nil || len(vs) != 2 || vs[0].Value != "us" || !vs[1].Sensitive {
			t.Fatalf("%+v %v", vs, err)
		}
		if err := s.PutSnapshot(ctx, store.Snapshot{Hash: "h1", Runbook: "ops/runbooks/backup.md", Source: []byte("# x"), CreatedBy: "a"}); err != nil {
			t.Fatal(err)
		}
		if err := s.PutSnapshot(ctx, store.Snapshot{Hash: "h1", Runbook: "ops/runbooks/backup.md", Source: []byte("# x"), CreatedBy: "b"}); err != nil {
			t.Fatalf("same snapshot twice: %v", err)
		}
		called := []store.CalledDocument{{Ref: "../lib/check.md", Path: "ops/lib/check.md", Source: []byte("# check\n")}}
		if err := s.PutSnapshot(ctx, store.Snapshot{Hash: "h2", Runbook: "ops/runbooks/backup.md", Source: []byte("# y"), Called: called, CreatedBy: "a"}); err != nil {
			t.Fatal(err)
		}
		if sn, err := s.GetSnapshot(ctx, "h2"); err != nil || !reflect.DeepEqual(sn.Called, called) {
			t.Fatalf("called runbooks of a snapshot: %+v %v", sn.Called, err)
		}
		if sn, err := s.GetSnapshot(ctx, "h1"); err != nil || sn.Called != nil {
			t.Fatalf("a snapshot that calls nothing: %+v %v", sn.Called, err)
		}
		if _, err := s.Published(ctx, "ops/runbooks/backup.md"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unpublished: %v", err)
		}
		if err := s.Publish(ctx, store.Publication{Runbook: "ops/runbooks/backup.md", Hash: "h1", PublishedBy: "a"}); err != nil {
			t.Fatal(err)
		}
		if p, err := s.Published(ctx, "ops/runbooks/backup.md"); err != nil || p.Hash != "h1" {
			t.Fatalf("%+v %v", p, err)
		}
		// Listed newest first, without sources, only the runbook's own.
		if err := s.PutSnapshot(ctx, store.Snapshot{Hash: "h3", Runbook: "ops/runbooks/backup.md", Source: []byte("# z"), CreatedBy: "c", CreatedAt: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if err := s.PutSnapshot(ctx, store.Snapshot{Hash: "other", Runbook: "ops/runbooks/other.md", Source: []byte("# o"), CreatedBy: "a"}); err != nil {
			t.Fatal(err)
		}
		sns, err := s.ListSnapshots(ctx, "ops/runbooks/backup.md", 0)
		if err != nil || len(sns) != 3 || sns[0].Hash != "h3" || sns[0].CreatedBy != "c" || sns[0].Source != nil || sns[0].CreatedAt.IsZero() {
			t.Fatalf("snapshots of backup.md: %+v %v", sns, err)
		}
		if sns, err := s.ListSnapshots(ctx, "ops/runbooks/backup.md", 1); err != nil || len(sns) != 1 || sns[0].Hash != "h3" {
			t.Fatalf("the newest snapshot of backup.md: %+v %v", sns, err)
		}
		svc := &store.User{Name: "svc-nightly", Service: true}
		if err := s.CreateUser(ctx, svc); err != nil {
			t.Fatal(err)
		}
		tr := &store.Trigger{Name: "nightly", Kind: store.TriggerSchedule, Runbook: "ops/runbooks/backup.md", Environment: "prod",
			Schedule: "0 3 * * *", Timezone: "Asia/Shanghai", CatchUp: true, ServiceUser: svc.ID, Enabled: true, CreatedBy: "a"}
		if err := s.CreateTrigger(ctx, tr); err != nil {
			t.Fatal(err)
		}
		fired := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
		if claimed, err := s.MarkTriggerFired(ctx, tr.ID, time.Time{}, fired); err != nil || !claimed {
			t.Fatalf("first claim: %v %v", claimed, err)
		}
		if claimed, err := s.MarkTriggerFired(ctx, tr.ID, time.Time{}, fired); err != nil || claimed {
			t.Fatalf("second claim of the same fire: %v %v", claimed, err)
		}
		if claimed, err := s.MarkTriggerFired(ctx, tr.ID, fired, fired.Add(-time.Hour)); err != nil || claimed {
			t.Fatalf("claim of an earlier fire: %v %v", claimed, err)
		}
		// Fault: two servers read the trigger at once and both claim, the
		// second with a later tick (bench/ha -mode ticks: after an outage,
		// every trigger reported its missed ticks twice). The second read is
		// stale: it claims nothing.
		if claimed, err := s.MarkTriggerFired(ctx, tr.ID, fired, fired.Add(time.Hour)); err != nil || !claimed {
			t.Fatalf("claim from the current fire time: %v %v", claimed, err)
		}
		if claimed, err := s.MarkTriggerFired(ctx, tr.ID, fired, fired.Add(2*time.Hour)); err != nil || claimed {
			t.Fatalf("claim from a stale read of the fire time: %v %v", claimed, err)
		}
		got, err := s.GetTrigger(ctx, "nightly")
		if err != nil || !got.LastFiredAt.Equal(fired.Add(time.Hour)) || !got.CatchUp || got.Timezone != "Asia/Shanghai" {
			t.Fatalf("%+v %v", got, err)
		}
	})
}
