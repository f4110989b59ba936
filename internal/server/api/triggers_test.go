package api_test

import (
	"bytes"
	"context"
	"maps"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/runs"
	"github.com/opsbook/opsbook/internal/server"
	"github.com/opsbook/opsbook/internal/store"
)

// webhookSecret is the secret of every webhook trigger the tests create.
const webhookSecret = "whsec-test-0123456789"

// webhookTrigger creates a webhook trigger acting as the service identity
// "svc" and returns its name.
func (h *harness) webhookTrigger(name, rb string) string {
	h.t.Helper()
	sealed, err := h.srv.Keys().Seal([]byte(webhookSecret), server.TriggerSecretAAD(name))
	if err != nil {
		h.t.Fatal(err)
	}
	svc := h.serviceUser()
	if err := h.st.CreateTrigger(context.Background(), &store.Trigger{Name: name, Kind: store.TriggerWebhook, Runbook: rb,
		Environment: "staging", Secret: sealed, ServiceUser: svc.ID, Enabled: true, CreatedBy: "test"}); err != nil {
		h.t.Fatal(err)
	}
	return name
}

// serviceUser returns the service identity "svc" (RunbookRun on the
// search project in staging), creating it on first use.
func (h *harness) serviceUser() store.User {
	ctx := context.Background()
	if u, err := h.st.GetUserByName(ctx, "svc"); err == nil {
		return u
	}
	u := &store.User{Name: "svc", Service: true}
	if err := h.st.CreateUser(ctx, u); err != nil {
		h.t.Fatal(err)
	}
	h.st.CreateTeam(ctx, "automation")
	h.st.AddTeamMember(ctx, "automation", u.ID)
	if err := h.st.CreateGrant(ctx, &auth.Grant{Team: "automation", Permission: auth.RunbookRun, Projects: []string{"search"}, Environments: []string{"staging"}}); err != nil {
		h.t.Fatal(err)
	}
	return *u
}

func (h *harness) signedHook(c credential, name string, body []byte) response {
	return h.hookWith(c, name, body, server.SignWebhook(webhookSecret, time.Now(), body))
}

func (h *harness) hookWith(c credential, name string, body []byte, sig string) response {
	h.t.Helper()
	req, _ := http.NewRequest("POST", h.http.URL+"/api/v1/hooks/"+name, bytes.NewReader(body))
	req.Header.Set(server.SignatureHeader, sig)
	switch {
	case c.key != "":
		req.Header.Set("Authorization", "Bearer "+c.key)
	case c.cookie != "":
		req.AddCookie(&http.Cookie{Name: server.SessionCookie, Value: c.cookie})
		req.Header.Set(auth.CSRFHeader, c.csrf)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return response{status: resp.StatusCode, body: b.Bytes(), header: resp.Header}
}

func TestWebhookTrigger(t *testing.T) {
	eachStore(t, func(t *testing.T, dsn string) {
		h := newHarness(t, dsn)
		h.publishAll()
		name := h.webhookTrigger("reindex", searchRunbook)
		body := []byte(`{}`)
		now := time.Now()
		tests := []struct {
			name string
			sig  string
			want int
		}{
			{"no signature", "", 401},
			{"wrong secret", server.SignWebhook("other secret", now, body), 401},
			{"too old", server.SignWebhook(webhookSecret, now.Add(-6*time.Minute), body), 401},
			{"from the future", server.SignWebhook(webhookSecret, now.Add(6*time.Minute), body), 401},
			{"signed for another body", server.SignWebhook(webhookSecret, now, []byte(`{"params":{}}`)), 401},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if r := h.hookWith(credential{}, name, body, tt.sig); r.status != tt.want {
					t.Fatalf("status %d, want %d: %s", r.status, tt.want, r.body)
				}
			})
		}
		sig := server.SignWebhook(webhookSecret, now, body)
		r := h.hookWith(credential{}, name, body, sig)
		if r.status != 202 {
			t.Fatalf("signed webhook: %d %s", r.status, r.body)
		}
		var run runbook.Run
		r.json(t, &run)
		if run.CreatedBy != "svc" {
			t.Fatalf("run created by %q, want the service identity", run.CreatedBy)
		}
		pub, _ := h.st.Published(context.Background(), searchRunbook)
		d := h.waitRun(run.ID, "finished", finished)
		if d.Status != runbook.RunSucceeded {
			t.Fatalf("webhook run ended %s", d.Status)
		}
		if r := h.hookWith(credential{}, name, body, sig); r.status != 401 {
			t.Fatalf("replayed webhook: %d %s", r.status, r.body)
		}
		_ = pub
		// The service identity may not run the payments runbook: 403.
		denied := h.webhookTrigger("backup-hook", checkRunbook)
		if r := h.signedHook(credential{}, denied, body); r.status != 403 {
			t.Fatalf("webhook beyond the service identity's grants: %d %s", r.status, r.body)
		}
		if r := h.signedHook(credential{}, "no-such-hook", body); r.status != 404 {
			t.Fatalf("unknown hook: %d", r.status)
		}
	})
}

// TestScheduledTrigger drives the scheduler's clock: on-time fires run,
// fires missed while "down" are reported and run once with catch_up.
func TestScheduledTrigger(t *testing.T) {
	h := newHarness(t, filepath.Join(t.TempDir(), "server.db"))
	h.publishAll()
	svc := h.serviceUser()
	ctx := context.Background()
	created := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for _, tr := range []store.Trigger{
		{Name: "hourly-catchup", CatchUp: true},
		{Name: "hourly-skip", CatchUp: false},
	} {
		tr.Kind, tr.Runbook, tr.Environment, tr.Schedule, tr.Timezone = store.TriggerSchedule, searchRunbook, "staging", "0 * * * *", "Asia/Shanghai"
		tr.ServiceUser, tr.Enabled, tr.CreatedBy, tr.CreatedAt = svc.ID, true, "test", created
		if err := h.st.CreateTrigger(ctx, &tr); err != nil {
			t.Fatal(err)
		}
	}
	countRuns := func() int {
		runs, err := h.st.ListRuns(ctx, store.RunFilter{Runbook: searchRunbook, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		return len(runs)
	}
	// 00:30: not due yet.
	h.srv.FireDueTriggers(ctx, created.Add(30*time.Minute))
	if n := countRuns(); n != 0 {
		t.Fatalf("runs before the first fire: %d", n)
	}
	// 01:00:10: on time, both fire once.
	h.srv.FireDueTriggers(ctx, created.Add(time.Hour+10*time.Second))
	h.srv.FireDueTriggers(ctx, created.Add(time.Hour+20*time.Second))
	if n := countRuns(); n != 2 {
		t.Fatalf("runs after the first fire: %d, want 2", n)
	}
	// Down from 01:01 to 05:30: fires at 02:00…05:00 were missed.
	h.srv.FireDueTriggers(ctx, created.Add(5*time.Hour+30*time.Minute))
	if n := countRuns(); n != 3 {
		t.Fatalf("runs after the outage: %d, want 3 (one catch-up run, none for the skipping trigger)", n)
	}
	var audit struct {
		Items []struct {
			Target string
			Detail map[string]string
		}
	}
	h.must(200, admin, "GET", "/api/v1/audit?action=trigger.missed", nil).json(t, &audit)
	if len(audit.Items) != 2 {
		t.Fatalf("missed fires reported %d times, want once per trigger: %+v", len(audit.Items), audit.Items)
	}
	for _, e := range audit.Items {
		if e.Detail["missed"] != "4" {
			t.Errorf("%s: missed = %s, want 4", e.Target, e.Detail["missed"])
		}
	}
	runs, _ := h.st.ListRuns(ctx, store.RunFilter{Runbook: searchRunbook, Limit: 100})
	for _, r := range runs {
		h.waitRun(r.ID, "finished", finished)
		if r.CreatedBy != "svc" {
			t.Errorf("scheduled run by %s", r.CreatedBy)
		}
	}
}

// TestScheduledTriggerSeveralOnTime is the fault "one scheduler pass
// finds several ticks that are all on time" — a schedule of seconds
// (`@every 10s`, which the API accepts), or a pass that comes late on a
// loaded node. Before, only the latest due tick fired and the others were
// skipped and reported as missed while a node was up: bench/ha -mode ticks
// lost 44 of 124 ticks with 3 nodes checking every 3 s. Every tick within
// runs.FireGrace starts its own run; only older ones are missed.
func TestScheduledTriggerSeveralOnTime(t *testing.T) {
	h := newHarness(t, filepath.Join(t.TempDir(), "server.db"))
	h.publishAll()
	svc := h.serviceUser()
	ctx := context.Background()
	created := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	var triggers []store.Trigger
	for _, tr := range []store.Trigger{{Name: "ten-seconds-skip"}, {Name: "ten-seconds-catchup", CatchUp: true}} {
		tr.Kind, tr.Runbook, tr.Environment, tr.Schedule = store.TriggerSchedule, searchRunbook, "staging", "@every 10s"
		tr.ServiceUser, tr.Enabled, tr.CreatedBy, tr.CreatedAt = svc.ID, true, "test", created
		if err := h.st.CreateTrigger(ctx, &tr); err != nil {
			t.Fatal(err)
		}
		triggers = append(triggers, tr)
	}
	fired := func() map[string]bool {
		runs, err := h.st.ListRuns(ctx, store.RunFilter{Runbook: searchRunbook, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		ids := map[string]bool{}
		for _, r := range runs {
			ids[r.ID] = true
		}
		return ids
	}
	// One pass 35 s after creation: the ticks at 10, 20 and 30 s are all
	// on time.
	h.srv.FireDueTriggers(ctx, created.Add(35*time.Second))
	got := fired()
	for _, tr := range triggers {
		for _, at := range []time.Duration{10, 20, 30} {
			if !got[runs.TickRunID(tr.ID, created.Add(at*time.Second))] {
				t.Errorf("%s: the on-time tick at +%ds started no run", tr.Name, at)
			}
		}
	}
	if len(got) != 6 {
		t.Fatalf("%d runs after the first pass, want 6 (3 ticks of 2 triggers)", len(got))
	}
	// No pass for 5 minutes: the ticks at 40…270 s are more than a minute
	// late (missed), those at 280…330 s on time.
	h.srv.FireDueTriggers(ctx, created.Add(335*time.Second))
	got = fired()
	for _, tr := range triggers {
		for at := 280; at <= 330; at += 10 {
			if !got[runs.TickRunID(tr.ID, created.Add(time.Duration(at)*time.Second))] {
				t.Errorf("%s: the on-time tick at +%ds started no run", tr.Name, at)
			}
		}
	}
	if len(got) != 6+12 {
		t.Fatalf("%d runs after the second pass, want 18 (no catch-up run: ticks were on time)", len(got))
	}
	var audit struct {
		Items []struct {
			Target string
			Detail map[string]string
		}
	}
	h.must(200, admin, "GET", "/api/v1/audit?action=trigger.missed", nil).json(t, &audit)
	if len(audit.Items) != 2 {
		t.Fatalf("missed ticks reported %d times, want once per trigger: %+v", len(audit.Items), audit.Items)
	}
	for _, e := range audit.Items {
		if e.Detail["missed"] != "24" {
			t.Errorf("%s: missed = %s, want 24", e.Target, e.Detail["missed"])
		}
	}
	for id := range got {
		h.waitRun(id, "finished", finished)
	}
}

// TestTriggerParamsCheckedAtCreation (issue #11): a schedule trigger with
// COUNT=abc for an int parameter was accepted, then failed every minute
// in the server's log only (fault: a trigger's parameters checked at fire
// time alone). The API and the admin form refuse it with the run's own
// validator, and a trigger that fails when it fires is in the audit log.
func TestTriggerParamsCheckedAtCreation(t *testing.T) {
	eachStore(t, func(t *testing.T, dsn string) {
		h := newAttackHarness(t, dsn)
		h.serviceUser()
		base := map[string]any{"kind": "schedule", "runbook": alphaCount, "environment": "dev", "schedule": "* * * * *", "service_user": "svc"}
		for _, c := range []struct {
			name   string
			kind   string
			params map[string]string
			want   int
		}{
			{"wrong type", "schedule", map[string]string{"COUNT": "abc"}, 400},
			{"missing required", "schedule", nil, 400},
			{"undeclared", "schedule", map[string]string{"COUNT": "1", "EXTRA": "x"}, 400},
			{"webhook wrong type", "webhook", map[string]string{"COUNT": "abc"}, 400},
			{"webhook leaves it to the body", "webhook", nil, 201},
			{"right", "schedule", map[string]string{"COUNT": "007"}, 201},
		} {
			body := maps.Clone(base)
			body["name"], body["kind"], body["params"] = h.unique("t"), c.kind, c.params
			if c.kind == "webhook" {
				delete(body, "schedule")
			}
			if r := h.do(admin, "POST", "/api/v1/triggers", body); r.status != c.want {
				t.Errorf("API, %s: status %d, want %d\n%s", c.name, r.status, c.want, r.body)
			}
		}
		form := url.Values{"name": {h.unique("ui")}, "kind": {"schedule"}, "runbook": {alphaCount}, "environment": {"dev"},
			"schedule": {"* * * * *"}, "service_user": {"svc"}, "params": {"COUNT=abc"}}
		if r := h.browse(h.creds[admin], "POST", "/admin/triggers", form); r.status != 400 || !strings.Contains(string(r.body), "COUNT") {
			t.Errorf("form, wrong type: status %d, want 400 naming COUNT", r.status)
		}
		form.Set("name", h.unique("ui"))
		form.Set("params", "COUNT=3")
		if r := h.browse(h.creds[admin], "POST", "/admin/triggers", form); r.status != 303 {
			t.Errorf("form, right: status %d\n%s", r.status, r.body)
		}
		// One stored before the check (or by hand): each failed fire is audited.
		ctx := context.Background()
		svc := h.serviceUser()
		bad := store.Trigger{Name: "legacy", Kind: store.TriggerSchedule, Runbook: alphaCount, Environment: "dev", Schedule: "* * * * *",
			Params: map[string]string{"COUNT": "abc"}, ServiceUser: svc.ID, Enabled: true, CreatedBy: "test", CreatedAt: time.Now().Add(-time.Hour)}
		if err := h.st.CreateTrigger(ctx, &bad); err != nil {
			t.Fatal(err)
		}
		h.srv.FireDueTriggers(ctx, time.Now().Truncate(time.Minute).Add(5*time.Second))
		var audit struct{ Items []struct{ Target string } }
		h.must(200, admin, "GET", "/api/v1/audit?action=trigger.failed", nil).json(t, &audit)
		if !slices.ContainsFunc(audit.Items, func(e struct{ Target string }) bool { return e.Target == "trigger/legacy" }) {
			t.Errorf("the failed fire of trigger legacy is not in the audit log: %+v", audit.Items)
		}
		h.cancelActive()
	})
}
