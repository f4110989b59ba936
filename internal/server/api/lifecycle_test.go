package api_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opsbook/opsbook/internal/lifecycle"
	"github.com/opsbook/opsbook/internal/lifecycle/gates"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/server"
	"github.com/opsbook/opsbook/internal/workspace"
)

const task = "2026-03-01-rotate"

var taskRunbook = "ops/active/" + task + "/" + task + "-runbook.md"

// taskWorkspace is a workspace with one task whose runbook calls another
// runbook, production protected (one reviewer, a rehearsal, Saturday
// windows), staging not.
func taskWorkspace(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"opsbook.yaml": `name: lc
environments:
  - name: staging
  - name: production
    protected: true
    reviewers: 1
    rehearsal: true
    windows:
      - {days: [sat], start: "01:00", end: "05:00"}
`,
		"ops/active/" + task + "/" + task + "-runbook.md": "---\nkind: runbook\ntitle: Rotate\nchange: emergency\n---\n\n## Steps\n\n" +
			"### Prepare\n\n```sh {id=prepare}\necho preparing\n```\n\n" +
			"### Verify\n\n```call {id=verify runbook=verify.md}\nWHO=the server\n```\n",
		"ops/active/" + task + "/verify.md": "---\nkind: runbook\ntitle: Verify\nparams:\n  WHO: {type: string, required: true}\n---\n\n## Steps\n\n" +
			"### Say\n\n```sh {id=say}\necho \"called by $WHO\"\n```\n",
		"ops/active/" + task + "/" + task + "-checklist.md": "# Checklist\n\n- [ ] `backups-done` Backups are done\n",
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rec := lifecycle.Record{Type: lifecycle.Created, Actor: "alice@example.com", Time: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	if err := lifecycle.Append(lifecycle.PathIn(filepath.Join(dir, "ops/active", task)), rec); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestTaskGatesThroughServer: a run of a task's runbook through the API
// passes the same lifecycle gates as `opsbook run`, is refused with 409
// and the gates in words, counts as a rehearsal, and is recorded in the
// task's lifecycle file; its call step runs the called runbook.
func TestTaskGatesThroughServer(t *testing.T) {
	eachStore(t, func(t *testing.T, dsn string) {
		dir := taskWorkspace(t)
		var now atomic.Value
		now.Store(time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)) // a Wednesday: outside the window
		h := newHarnessWith(t, dsn, func(c *server.Config) {
			c.Workspace = dir
			c.Now = func() time.Time { return now.Load().(time.Time) }
		})
		start := func(env, emergency string) response {
			return h.do(editor, "POST", "/api/v1/runs", map[string]any{"runbook": taskRunbook, "environment": env, "emergency": emergency})
		}
		refused := func(r response, unmet ...string) string {
			t.Helper()
			var e struct{ Error server.Error }
			r.json(t, &e)
			if r.status != http.StatusConflict || e.Error.Code != "gates_unmet" {
				t.Fatalf("status %d, want 409 gates_unmet:\n%s", r.status, r.body)
			}
			for _, id := range unmet {
				if !strings.Contains(e.Error.Message, id) {
					t.Errorf("refusal does not name %q:\n%s", id, e.Error.Message)
				}
			}
			return e.Error.Message
		}

		msg := refused(start("production", ""), "reviews, rehearsal, checklist, window not met", "[ ] reviews", "missing:", "[ ] rehearsal", "[ ] pre-execution checklist", "[ ] change window")
		if !strings.Contains(msg, "outside production's change windows") {
			t.Errorf("the window gate says why in words:\n%s", msg)
		}

		// Rehearsal in staging through the server; the call step runs the called runbook.
		var rehearsal runbook.Run
		h.must(http.StatusCreated, editor, "POST", "/api/v1/runs", map[string]any{"runbook": taskRunbook, "environment": "staging"}).json(t, &rehearsal)
		if d := h.waitRun(rehearsal.ID, "finished", finished); d.Status != runbook.RunSucceeded {
			t.Fatalf("rehearsal %s: %+v", d.Status, d.State)
		}
		if !strings.Contains(eventText(h, rehearsal.ID), "called by the server") {
			t.Errorf("the called runbook's step did not run with its binding:\n%s", eventText(h, rehearsal.ID))
		}
		taskDir := filepath.Join(dir, "ops/active", task)
		runs := lifecycle.Runs(waitRecords(t, taskDir, func(r lifecycle.Record) bool {
			return r.Type == lifecycle.Run && r.RunID == rehearsal.ID && r.Status != string(runbook.RunRunning)
		}))
		if len(runs) != 1 || runs[0].RunID != rehearsal.ID || runs[0].Status != string(runbook.RunSucceeded) || runs[0].Environment != "staging" {
			t.Fatalf("lifecycle runs after the rehearsal: %+v", runs)
		}

		// Only the store knows the rehearsal now: it still counts.
		var kept []byte
		for _, r := range mustRecords(t, taskDir) {
			if r.Type != lifecycle.Run {
				b, _ := json.Marshal(r)
				kept = append(append(kept, b...), '\n')
			}
		}
		if err := os.WriteFile(lifecycle.PathIn(taskDir), kept, 0o644); err != nil {
			t.Fatal(err)
		}
		ws, err := workspace.Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		gt, err := gates.Load(ws, task)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range []lifecycle.Record{
			{Type: lifecycle.Review, Actor: "bob@example.com", Verdict: lifecycle.Approve, Snapshot: gt.Snapshot},
			{Type: lifecycle.Check, Actor: "bob@example.com", Item: "backups-done"},
		} {
			if err := gt.Append(r); err != nil {
				t.Fatal(err)
			}
		}
		msg = refused(start("production", ""), "window not met", "[x] reviews", "[x] rehearsal", "[x] pre-execution checklist", "[ ] change window")

		// change: emergency with a reason overrides the window, and says so in the record.
		r := start("production", "payments are down")
		if r.status != http.StatusCreated {
			t.Fatalf("emergency run: %d %s", r.status, r.body)
		}
		var prod runbook.Run
		r.json(t, &prod)
		if d := h.waitRun(prod.ID, "finished", finished); d.Status != runbook.RunSucceeded {
			t.Fatalf("production run %s", d.Status)
		}
		var types []string
		for _, rec := range waitRecords(t, taskDir, func(r lifecycle.Record) bool { return r.Type == lifecycle.Completed && r.RunID == prod.ID }) {
			if rec.RunID == prod.ID {
				types = append(types, string(rec.Type)+":"+rec.Status+rec.Note)
			}
		}
		want := "override:payments are down run:running run:succeeded completed:succeeded"
		if strings.Join(types, " ") != want {
			t.Errorf("lifecycle records of the production run: %q, want %q", types, want)
		}

		// The UI's run form: refused with the gates in words, then the emergency reason field.
		form := url.Values{"runbook": {taskRunbook}, "environment": {"production"}}
		if r := h.browse(h.creds[editor], "POST", "/runs", form); r.status != http.StatusUnprocessableEntity || !strings.Contains(string(r.body), "change window") {
			t.Errorf("UI form outside the window: %d, want 422 naming the change window:\n%s", r.status, r.body)
		}
		form.Set("emergency_reason", "payments are still down")
		if r := h.browse(h.creds[editor], "POST", "/runs", form); r.status != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), "/runs/") {
			t.Errorf("UI form with an emergency reason: %d %s, want a redirect to the run:\n%s", r.status, r.header.Get("Location"), r.body)
		}
		if !strings.Contains(string(h.browse(h.creds[editor], "GET", "/runbooks/"+taskRunbook, nil).body), `name="emergency_reason"`) {
			t.Errorf("the run form of a change: emergency runbook has no emergency reason field")
		}

		// Inside the window, without an override, the completed task's gates still hold.
		now.Store(time.Date(2026, 3, 7, 2, 0, 0, 0, time.UTC))
		if r := start("production", ""); r.status != http.StatusCreated {
			t.Errorf("inside the window: %d %s", r.status, r.body)
		}
	})
}

func mustRecords(t *testing.T, taskDir string) []lifecycle.Record {
	t.Helper()
	recs, err := lifecycle.Load(lifecycle.PathIn(taskDir))
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// waitRecords returns the task's lifecycle records once one of them is
// done: the server records a run's finish just after the run's status says
// so. After a while it returns them as they are, for the caller to report.
func waitRecords(t *testing.T, taskDir string, done func(lifecycle.Record) bool) []lifecycle.Record {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		recs := mustRecords(t, taskDir)
		if slices.ContainsFunc(recs, done) || time.Now().After(deadline) {
			return recs
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// eventText is every event text of a run, one a line.
func eventText(h *harness, id string) string {
	var page struct{ Events []runbook.Event }
	h.must(http.StatusOK, admin, "GET", "/api/v1/runs/"+id+"/events", nil).json(h.t, &page)
	var b strings.Builder
	for _, ev := range page.Events {
		b.WriteString(string(ev.Type) + " " + ev.Step + " " + ev.Text + "\n")
	}
	return b.String()
}

// TestStandingRunbookWindowThroughServer: a standing runbook (not a task's)
// of a normal change is held to the protected environment's change window
// through the API as through `opsbook run`; a standard change is not.
func TestStandingRunbookWindowThroughServer(t *testing.T) {
	dir := taskWorkspace(t)
	for name, change := range map[string]string{"normal": "normal", "routine": "standard"} {
		body := "---\nkind: runbook\ntitle: " + name + "\nchange: " + change + "\n---\n\n## Steps\n\n### Do\n\n```sh {id=do verify=none reason=test}\ntrue\n```\n"
		p := filepath.Join(dir, "ops", "runbooks", name+".md")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h := newHarnessWith(t, filepath.Join(t.TempDir(), "server.db"), func(c *server.Config) {
		c.Workspace = dir
		c.Now = func() time.Time { return time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC) } // a Wednesday: outside the window
	})
	r := h.do(admin, "POST", "/api/v1/runs", map[string]any{"runbook": "ops/runbooks/normal.md", "environment": "production", "snapshot": "current"})
	if r.status != http.StatusConflict || !strings.Contains(string(r.body), "change window") {
		t.Errorf("normal change outside the window: %d %s, want 409 naming the change window", r.status, r.body)
	}
	if r := h.do(admin, "POST", "/api/v1/runs", map[string]any{"runbook": "ops/runbooks/routine.md", "environment": "production", "snapshot": "current"}); r.status != http.StatusCreated {
		t.Errorf("standard change outside the window: %d %s, want 201", r.status, r.body)
	}
	if r := h.do(admin, "POST", "/api/v1/runs", map[string]any{"runbook": "ops/runbooks/normal.md", "environment": "staging", "snapshot": "current"}); r.status != http.StatusCreated {
		t.Errorf("normal change in an unprotected environment: %d %s, want 201", r.status, r.body)
	}
}
