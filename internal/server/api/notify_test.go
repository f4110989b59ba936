package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opsbook/opsbook/internal/notify"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/server"
	"github.com/opsbook/opsbook/internal/store"
)

// TestNotificationsOfAServerRun: a run on the server that waits at a gate
// and then succeeds tells the workspace's webhook channel both, each with a
// link to the run page, signed, without the run's secret parameter; the
// run's log records the deliveries, and the postmortem's timeline lists them.
func TestNotificationsOfAServerRun(t *testing.T) {
	eachStore(t, func(t *testing.T, dsn string) {
		var mu sync.Mutex
		var got []notify.Message
		rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			sig := r.Header.Get(notify.SignatureHeader)
			ts, _, _ := strings.Cut(strings.TrimPrefix(sig, "t="), ",")
			var m notify.Message
			json.Unmarshal(body, &m)
			unix, _ := strconv.ParseInt(ts, 10, 64)
			if notify.Sign("hook-secret", time.Unix(unix, 0), body) != sig {
				http.Error(w, "bad signature", http.StatusUnauthorized)
				return
			}
			mu.Lock()
			got = append(got, m)
			mu.Unlock()
		}))
		defer rcv.Close()
		t.Setenv("OPSBOOK_TEST_HOOK_SECRET", "hook-secret")
		t.Setenv("OPSBOOK_TEST_HOOK_URL", rcv.URL)

		ws := t.TempDir()
		if err := os.CopyFS(ws, os.DirFS("testdata/workspace")); err != nil {
			t.Fatal(err)
		}
		cfgPath := filepath.Join(ws, "opsbook.yaml")
		cfg, _ := os.ReadFile(cfgPath)
		cfg = append(cfg, []byte(`notifications:
  - name: ops-hook
    type: webhook
    url_env: OPSBOOK_TEST_HOOK_URL
    secret_env: OPSBOOK_TEST_HOOK_SECRET
    projects: [payments]
    events: [waiting, succeeded, failed]
`)...)
		if err := os.WriteFile(cfgPath, cfg, 0o644); err != nil {
			t.Fatal(err)
		}
		h := newHarnessWith(t, dsn, func(c *server.Config) {
			c.Workspace = ws
			c.PublicURL = "https://ops.example.com/"
		})
		h.publishAll()
		run := h.startRun(runner, backupRunbook, "staging", map[string]string{"TOKEN": "t0ken-value"})
		h.waitRun(run.ID, "at the gate", waitingFor(runbook.WaitKindGate))
		ctx := context.Background()
		if _, err := h.srv.Notifier().Round(ctx); err != nil {
			t.Fatal(err)
		}
		h.must(200, approver, "POST", "/api/v1/runs/"+run.ID+"/gate", map[string]string{"decision": "go", "reason": "dump verified"})
		h.waitRun(run.ID, "finished", finished)
		if _, err := h.srv.Notifier().Round(ctx); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(got) != 2 || got[0].Kind != "waiting" || got[1].Kind != "succeeded" {
			t.Fatalf("receiver got %+v, want waiting then succeeded", got)
		}
		for _, m := range got {
			if m.Link != "https://ops.example.com/runs/"+run.ID || m.Project != "payments" {
				t.Errorf("message %+v", m)
			}
			if b, _ := json.Marshal(m); strings.Contains(string(b), "t0ken-value") {
				t.Errorf("message holds the secret parameter: %s", b)
			}
		}
		ds, err := h.st.Deliveries(ctx, run.ID, "")
		if err != nil || len(ds) != 2 || ds[0].Status != store.DeliverySent {
			t.Fatalf("deliveries %+v %v", ds, err)
		}
		r := h.browse(h.creds[admin], "GET", "/runs/"+run.ID+"/postmortem", nil)
		if r.status != 200 || !strings.Contains(string(r.body), "ops-hook") {
			t.Errorf("the postmortem's timeline does not list the notifications:\n%s", r.body)
		}
	})
}

// TestWatchShownOnRunPageAndOverview: a runbook with watch: keeps its
// guards watched after the run succeeds; the run page and the overview
// say so, with the time left.
func TestWatchShownOnRunPageAndOverview(t *testing.T) {
	eachStore(t, func(t *testing.T, dsn string) {
		prom := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"0.5"]}]}}`)
		}))
		defer prom.Close()
		t.Setenv("OPSBOOK_PROMETHEUS_URL", prom.URL)
		ws := t.TempDir()
		if err := os.CopyFS(ws, os.DirFS("testdata/workspace")); err != nil {
			t.Fatal(err)
		}
		const rb = "ops/runbooks/search-watched.md"
		doc := "---\nkind: runbook\ntitle: Watched change\nguards:\n  - {name: errors, query: error_rate, threshold: \"> 1\", interval: 1m, on_breach: pause}\nwatch: 24h\n---\n\n# Watched change\n\n## Steps\n\n### Change\n\n```sh {id=change}\ntrue\n```\n"
		if err := os.WriteFile(filepath.Join(ws, rb), []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		h := newHarnessWith(t, dsn, func(c *server.Config) { c.Workspace = ws })
		h.must(http.StatusCreated, admin, "POST", "/api/v1/snapshots", map[string]string{"runbook": rb})
		run := h.startRun(admin, rb, "staging", nil)
		d := h.waitRun(run.ID, "finished", finished)
		if d.Status != runbook.RunSucceeded || d.State.Watch == nil || d.State.Watch.Finished {
			t.Fatalf("run %s, watch %+v", d.Status, d.State.Watch)
		}
		for _, page := range []string{"/runs/" + run.ID, "/"} {
			r := h.browse(h.creds[admin], "GET", page, nil)
			if r.status != 200 || !strings.Contains(string(r.body), "watching the guards, left:") || !strings.Contains(string(r.body), "24h0m0s") {
				t.Errorf("%s does not show the watch (%d)", page, r.status)
			}
		}
	})
}
