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

	"github.com/opsbook/opsbook/internal/auth"
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
		// git-email records in lifecycle.jsonl name whoever the committer
		// claims to be: the server does not count them in production.
		refused(start("production", ""), "reviews, checklist, window not met", "[ ] reviews", "1 unverified git-email approval(s)", "[x] rehearsal", "[ ] pre-execution checklist")
		h.must(http.StatusCreated, approver, "POST", "/api/v1/tasks/"+task+"/reviews", map[string]string{"verdict": "approve", "snapshot": gt.Snapshot})
		h.must(http.StatusOK, editor, "POST", "/api/v1/tasks/"+task+"/checklist/backups-done", map[string]string{"note": "dump restored on stg"})
		msg = refused(start("production", ""), "window not met", "[x] reviews", "(approver) by signed-in users", "[x] rehearsal", "[x] pre-execution checklist", "[ ] change window")

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

// TestTaskReviewsThroughServer: reviews and checklist ticks of a planned
// operation given through the server count for its protected environment,
// and the ways around that do not: one person with git's user.email set
// to two addresses (fault: a self-claimed identity), the same user
// approving twice (fault: a repeated request), a user without the grant
// (fault: an ungranted caller), the task's author, a stale snapshot.
func TestTaskReviewsThroughServer(t *testing.T) {
	eachStore(t, func(t *testing.T, dsn string) {
		dir := taskWorkspace(t)
		// Two reviewers in production for this test.
		cfg := filepath.Join(dir, "opsbook.yaml")
		b, err := os.ReadFile(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(cfg, []byte(strings.Replace(string(b), "reviewers: 1", "reviewers: 2", 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		h := newHarnessWith(t, dsn, func(c *server.Config) {
			c.Workspace = dir
			c.Now = func() time.Time { return time.Date(2026, 3, 7, 2, 0, 0, 0, time.UTC) } // inside the window
		})
		ws, err := workspace.Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		gt, err := gates.Load(ws, task)
		if err != nil {
			t.Fatal(err)
		}
		// Mallory approves as two git identities.
		for _, email := range []string{"mallory@example.com", "m.allory@example.com"} {
			if err := gt.Append(lifecycle.Record{Type: lifecycle.Review, Actor: email, Verdict: lifecycle.Approve, Snapshot: gt.Snapshot}); err != nil {
				t.Fatal(err)
			}
		}
		reviews := "/api/v1/tasks/" + task + "/reviews"
		view := func() (v struct {
			Snapshot  string
			Approvers []string
			Reviews   []struct{ Reviewer, Verdict string }
			Gates     []gates.Gate
		}) {
			h.must(http.StatusOK, viewer, "GET", reviews, nil).json(t, &v)
			return v
		}
		reviewsGate := func() gates.Gate {
			for _, g := range view().Gates {
				if g.ID == gates.GateReviews {
					return g
				}
			}
			t.Fatal("no reviews gate")
			return gates.Gate{}
		}
		if g := reviewsGate(); g.Met || !strings.Contains(g.Detail, "0 of 2") {
			t.Fatalf("two git-email approvals by one person: %+v, want 0 of 2", g)
		}

		// A viewer without RunbookApprove cannot review; without RunbookRun cannot tick.
		if r := h.do(viewer, "POST", reviews, map[string]string{"verdict": "approve"}); r.status != http.StatusForbidden {
			t.Errorf("viewer reviews: %d %s, want 403", r.status, r.body)
		}
		if r := h.do(viewer, "POST", "/api/v1/tasks/"+task+"/checklist/backups-done", map[string]string{}); r.status != http.StatusForbidden {
			t.Errorf("viewer ticks: %d %s, want 403", r.status, r.body)
		}
		// The same user twice counts once.
		h.must(http.StatusCreated, approver, "POST", reviews, map[string]string{"verdict": "approve"})
		var again struct{ Replaced bool }
		h.must(http.StatusOK, approver, "POST", reviews, map[string]string{"verdict": "approve", "comment": "still fine"}).json(t, &again)
		if !again.Replaced {
			t.Errorf("a second approval by the same user was not a replacement")
		}
		if v := view(); len(v.Reviews) != 1 || len(v.Approvers) != 1 {
			t.Errorf("after approving twice: %+v, want one review", v)
		}
		if g := reviewsGate(); g.Met || !strings.Contains(g.Detail, "1 of 2") {
			t.Errorf("one user approving twice: %+v, want 1 of 2", g)
		}
		// The author (alice@example.com created the task) cannot approve as alice.
		alice := h.login(h.user("alice", auth.RunbookView, auth.RunbookApprove))
		if r := h.doWith(alice, "POST", reviews, map[string]string{"verdict": "approve"}); r.status != http.StatusForbidden || !strings.Contains(string(r.body), "author") {
			t.Errorf("the author approves: %d %s, want 403 naming the author", r.status, r.body)
		}
		// Approving another snapshot than the current one is refused.
		carol := h.login(h.user("carol", auth.RunbookView, auth.RunbookApprove))
		if r := h.doWith(carol, "POST", reviews, map[string]string{"verdict": "approve", "snapshot": "sha256:old"}); r.status != http.StatusConflict {
			t.Errorf("stale snapshot: %d %s, want 409", r.status, r.body)
		}
		if r := h.doWith(carol, "POST", reviews, map[string]string{"verdict": "request-changes"}); r.status != http.StatusBadRequest {
			t.Errorf("request-changes without a comment: %d %s, want 400", r.status, r.body)
		}
		if r := h.doWith(carol, "POST", reviews, map[string]string{"verdict": "lgtm"}); r.status != http.StatusBadRequest {
			t.Errorf("verdict lgtm: %d %s, want 400", r.status, r.body)
		}
		if r := h.doWith(carol, "POST", reviews, map[string]string{"verdict": "approve"}); r.status != http.StatusCreated {
			t.Fatalf("carol approves: %d %s", r.status, r.body)
		}
		if g := reviewsGate(); !g.Met || !strings.Contains(g.Detail, "2 of 2") {
			t.Errorf("two signed-in reviewers: %+v, want met", g)
		}
		if r := h.do(editor, "POST", "/api/v1/tasks/"+task+"/checklist/no-such-item", map[string]string{}); r.status != http.StatusNotFound || !strings.Contains(string(r.body), "backups-done") {
			t.Errorf("unknown item: %d %s, want 404 listing the items", r.status, r.body)
		}
		if r := h.do(editor, "POST", "/api/v1/tasks/"+task+"/checklist/backups-done", map[string]any{"note": 42}); r.status != http.StatusBadRequest {
			t.Errorf("bad body: %d %s, want 400", r.status, r.body)
		}
		h.must(http.StatusNotFound, viewer, "GET", "/api/v1/tasks/2026-01-01-no-such-task/reviews", nil)
		h.must(http.StatusBadRequest, viewer, "GET", "/api/v1/tasks/..%2Fetc/reviews", nil)

		var audit struct {
			Items []struct{ Actor, Action, Target string }
		}
		h.must(http.StatusOK, admin, "GET", "/api/v1/audit?action=task.review", nil).json(t, &audit)
		if len(audit.Items) != 3 || audit.Items[0].Target != "task/"+task {
			t.Errorf("audit of task.review: %+v, want 3 entries", audit.Items)
		}
	})
}
