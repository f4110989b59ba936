package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/server"
	"github.com/opsbook/opsbook/internal/store"
)

// alertRunbook takes the lagging instance and its lag from the alert; a
// manual step keeps the run active while the alert repeats.
const alertRunbook = "ops/runbooks/search-node-recover.md"

const alertRunbookText = `---
kind: runbook
title: Recover a lagging search node
params:
  INSTANCE: {type: string, required: true}
  LAG: {type: int, required: true}
---

# Recover a lagging search node

## Steps

### Look

` + "```manual {id=look}\nCheck $INSTANCE on the dashboard.\n```" + `

### Report

` + "```sh {id=report}\necho \"recovered $INSTANCE after ${LAG}s\"\n```\n"

// alertHarness serves a copy of the test workspace with alertRunbook and
// an Alertmanager trigger "search-lag" selecting critical SearchNodeLagging
// alerts, created through the API; it returns the trigger's secret.
func alertHarness(t *testing.T, dsn string) (*harness, string) {
	t.Helper()
	ws := t.TempDir()
	if err := os.CopyFS(ws, os.DirFS("testdata/workspace")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ws, alertRunbook), []byte(alertRunbookText), 0o644); err != nil {
		t.Fatal(err)
	}
	h := newHarnessWith(t, dsn, func(c *server.Config) { c.Workspace = ws })
	h.serviceUser()
	h.must(http.StatusCreated, admin, "POST", "/api/v1/snapshots", map[string]string{"runbook": alertRunbook})
	var created struct {
		store.Trigger
		Secret string `json:"secret"`
	}
	h.must(http.StatusCreated, admin, "POST", "/api/v1/triggers", map[string]any{
		"name": "search-lag", "kind": "webhook", "format": "alertmanager", "runbook": alertRunbook, "environment": "staging",
		"service_user": "svc",
		"match":        map[string]string{"alertname": "SearchNodeLagging", "severity": "critical"},
		"alert_params": map[string]string{"INSTANCE": "labels.instance", "LAG": "annotations.lag_seconds"},
	}).json(t, &created)
	if created.Secret == "" || created.Format != "alertmanager" {
		t.Fatalf("created %+v", created)
	}
	return h, created.Secret
}

func (h *harness) alert(token string, payload []byte) response {
	return h.alertTo("search-lag", token, payload)
}

// alertmanagerHook creates an alertmanager trigger of the search runbook
// (no parameters) and sends it one firing alert, as the permission matrix
// does for every role: the trigger's token, not the caller, authenticates.
func (h *harness) alertmanagerHook(name string) response {
	h.t.Helper()
	const token = "am-token-0123456789"
	sealed, err := h.srv.Keys().Seal([]byte(token), server.TriggerSecretAAD(name))
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.st.CreateTrigger(context.Background(), &store.Trigger{Name: name, Kind: store.TriggerWebhook, Format: server.FormatAlertmanager,
		Runbook: searchRunbook, Environment: "staging", Match: map[string]string{"alertname": "SearchDown"}, Secret: sealed,
		ServiceUser: h.serviceUser().ID, Enabled: true, CreatedBy: "test"}); err != nil {
		h.t.Fatal(err)
	}
	return h.alertTo(name, token, []byte(`{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"SearchDown"},"fingerprint":"`+name+`"}]}`))
}

func (h *harness) alertTo(trigger, token string, payload []byte) response {
	h.t.Helper()
	req, _ := http.NewRequest("POST", h.http.URL+"/api/v1/hooks/"+trigger+"/alertmanager", bytes.NewReader(payload))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
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

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata/alertmanager", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAlertmanagerStartsOneRunPerFingerprint: Alertmanager's real payload
// starts one run for the critical alert (not the warning one) with typed
// parameters from its labels and annotations; repeated notifications while
// the run is active start nothing; the resolution is recorded on the run;
// once the run has finished, the alert firing again starts a new run.
func TestAlertmanagerStartsOneRunPerFingerprint(t *testing.T) {
	eachStore(t, func(t *testing.T, dsn string) {
		h, secret := alertHarness(t, dsn)
		firing := fixture(t, "firing.json")

		// Unauthenticated and wrongly authenticated notifications start nothing.
		for _, tok := range []string{"", "wrong-" + secret} {
			if r := h.alert(tok, firing); r.status != http.StatusUnauthorized {
				t.Fatalf("token %q: %d %s", tok, r.status, r.body)
			}
		}

		var out server.AlertOutcome
		r := h.alert(secret, firing)
		if r.status != http.StatusAccepted {
			t.Fatalf("firing: %d %s", r.status, r.body)
		}
		r.json(t, &out)
		if len(out.Started) != 1 || out.Ignored != 1 {
			t.Fatalf("firing: %+v, want one run started and the warning ignored", out)
		}
		runID := out.Started[0]
		d := h.waitRun(runID, "at the manual step", waitingFor(runbook.WaitKindManual))
		if d.Params["INSTANCE"] != "search-2:9114" || d.Params["LAG"] != "45" || d.CreatedBy != "svc" {
			t.Errorf("run %+v", d.Run)
		}

		// Alertmanager repeats the notification (repeat_interval, or two
		// replicas in a cluster sending at once): no second run.
		var wg sync.WaitGroup
		outs := make([]server.AlertOutcome, 4)
		for i := range outs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := h.alert(secret, firing)
				if r.status == http.StatusAccepted {
					json.Unmarshal(r.body, &outs[i])
				}
			}()
		}
		wg.Wait()
		for _, o := range outs {
			if len(o.Started) != 0 || len(o.Repeated) != 1 || o.Repeated[0] != runID {
				t.Errorf("repeat: %+v", o)
			}
		}
		runs, err := h.st.ListRuns(context.Background(), store.RunFilter{Runbook: alertRunbook})
		if err != nil || len(runs) != 1 {
			t.Fatalf("%d runs of the runbook after repeats (%v), want 1", len(runs), err)
		}

		// Resolved: recorded on the run.
		h.alert(secret, fixture(t, "resolved.json")).json(t, &out)
		if len(out.Resolved) != 1 || out.Resolved[0] != runID {
			t.Fatalf("resolved: %+v", out)
		}
		evs, _ := h.st.Events(context.Background(), runID, 0, 0)
		var fired, resolved bool
		for _, ev := range evs {
			fired = fired || (ev.Type == runbook.EventAlertFired && strings.Contains(ev.Text, "search-2 is 45 s behind"))
			resolved = resolved || ev.Type == runbook.EventAlertResolved
		}
		if !fired || !resolved {
			t.Errorf("the run's log lacks the alert's firing (%v) or resolution (%v)", fired, resolved)
		}

		// The run finishes; the alert fires again: a new run.
		h.must(http.StatusOK, admin, "POST", "/api/v1/runs/"+runID+"/answer", map[string]string{"kind": "manual", "choice": "confirmed", "reason": "looked"})
		h.waitRun(runID, "finished", finished)
		h.alert(secret, firing).json(t, &out)
		if len(out.Started) != 1 || out.Started[0] == runID {
			t.Fatalf("after the first run finished: %+v, want a new run", out)
		}
	})
}

// TestAlertmanagerParamsValidated: an alert whose annotation is not of the
// parameter's type starts no run; the refusal is answered and audited, and
// the next (fixed) notification starts the run.
func TestAlertmanagerParamsValidated(t *testing.T) {
	eachStore(t, func(t *testing.T, dsn string) {
		h, secret := alertHarness(t, dsn)
		bad := strings.Replace(string(fixture(t, "firing.json")), `"lag_seconds": "45"`, `"lag_seconds": "forty-five"`, 1)
		var out server.AlertOutcome
		h.alert(secret, []byte(bad)).json(t, &out)
		if len(out.Started) != 0 || len(out.Refused) != 1 || !strings.Contains(out.Refused["c4f2a1b9d3e87f60"], "LAG") {
			t.Fatalf("bad LAG: %+v", out)
		}
		audit := h.must(http.StatusOK, admin, "GET", "/api/v1/audit", nil)
		if !strings.Contains(string(audit.body), "trigger.refused") {
			t.Errorf("the refusal is not in the audit log: %s", audit.body)
		}
		h.alert(secret, fixture(t, "firing.json")).json(t, &out)
		if len(out.Started) != 1 {
			t.Fatalf("fixed alert: %+v", out)
		}
	})
}

// TestAlertmanagerTriggerSpecChecked: a trigger whose alert_params name a
// parameter the runbook lacks, or a source that is not labels./annotations.,
// is refused at creation.
func TestAlertmanagerTriggerSpecChecked(t *testing.T) {
	eachStore(t, func(t *testing.T, dsn string) {
		h, _ := alertHarness(t, dsn)
		for _, ap := range []map[string]string{{"NOPE": "labels.instance"}, {"INSTANCE": "instance"}, {"INSTANCE": "env.HOME"}} {
			r := h.do(admin, "POST", "/api/v1/triggers", map[string]any{"name": "bad", "kind": "webhook", "format": "alertmanager",
				"runbook": alertRunbook, "environment": "staging", "service_user": "svc",
				"match": map[string]string{"alertname": "X"}, "alert_params": ap})
			if r.status != http.StatusBadRequest {
				t.Errorf("alert_params %v: %d %s", ap, r.status, r.body)
			}
		}
		r := h.do(admin, "POST", "/api/v1/triggers", map[string]any{"name": "bad", "kind": "webhook", "format": "alertmanager",
			"runbook": alertRunbook, "environment": "staging", "service_user": "svc"})
		if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "match") {
			t.Errorf("no match: %d %s", r.status, r.body)
		}
	})
}
