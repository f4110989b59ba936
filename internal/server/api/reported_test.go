package api_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/store"
)

// TestReportedRunAPI: a run executing in someone's process is recorded on
// the server as they report it, and the server keeps its rules. Faults:
// a secret parameter sent along, a protected environment's gate, a name
// claimed by the reporting process, events sent into a server-executed
// run, and decisions and cancellations the server cannot carry out.
func TestReportedRunAPI(t *testing.T) {
	h := newHarness(t, filepath.Join(t.TempDir(), "server.db"))
	src, err := os.ReadFile("testdata/workspace/" + backupRunbook)
	if err != nil {
		t.Fatal(err)
	}
	report := func(id, env string) map[string]any {
		return map[string]any{"id": id, "runbook": backupRunbook, "environment": env, "source": string(src),
			"params": map[string]string{"TOKEN": "hunter2-secret", "LABEL": "laptop"}}
	}

	// Bad input: not a run id; a document that does not parse.
	if r := h.do(runner, "POST", "/api/v1/runs/reported", report("../../etc", "staging")); r.status != http.StatusBadRequest {
		t.Fatalf("a bad id: %d %s", r.status, r.body)
	}
	broken := report(store.NewRunID(), "staging")
	broken["source"] = "---\nkind: [runbook\n---\n"
	if r := h.do(runner, "POST", "/api/v1/runs/reported", broken); r.status != http.StatusBadRequest {
		t.Fatalf("a broken document: %d %s", r.status, r.body)
	}
	// A protected environment's gate is decided on the server only.
	if r := h.do(runner, "POST", "/api/v1/runs/reported", report(store.NewRunID(), "production")); r.status != http.StatusForbidden || !strings.Contains(string(r.body), "protected") {
		t.Fatalf("a gate in production reported: %d %s", r.status, r.body)
	}

	id := store.NewRunID()
	var run runbook.Run
	h.must(http.StatusCreated, runner, "POST", "/api/v1/runs/reported", report(id, "staging")).json(t, &run)
	if run.CreatedBy != runner || run.Params["TOKEN"] != "" || run.Params["LABEL"] != "laptop" {
		t.Fatalf("reported run: %+v (the secret must not be stored, the creator is the caller)", run)
	}
	evs := []runbook.Event{
		{Seq: 1, Type: runbook.EventRunStarted, Text: "Back up the payments database", Data: map[string]string{"env": "staging", "user": "root"}},
		{Seq: 2, Type: runbook.EventStepStarted, Step: "dump"},
		{Seq: 3, Type: runbook.EventStepOutput, Step: "dump", Stream: "stdout", Text: "dumping laptop with token ***\n"},
		{Seq: 4, Type: runbook.EventStepFinished, Step: "dump", Data: map[string]string{"status": "succeeded"}},
		{Seq: 5, Type: runbook.EventGateWaiting, Step: "go", Data: map[string]string{"approvers": "1"}, Text: "Go when the dump is complete."},
	}
	h.must(http.StatusOK, runner, "POST", "/api/v1/runs/"+id+"/events", map[string]any{"events": evs})
	// The run page says where it executes and offers no decision on it.
	if r := h.must(http.StatusOK, approver, "GET", "/runs/"+id, nil); !strings.Contains(string(r.body), `id="reported-by"`) || strings.Contains(string(r.body), `id="approve"`) {
		t.Fatalf("the run page of a reported run at a gate:\n%s", r.body)
	}
	// The server cannot decide, cancel or resume what runs on a laptop.
	for _, c := range []struct {
		role, path string
		body       any
	}{{approver, "/gate", map[string]string{"decision": "go", "reason": "r"}}, {runner, "/cancel", map[string]string{"reason": "r"}}, {runner, "/resume", map[string]string{}}} {
		if r := h.do(c.role, "POST", "/api/v1/runs/"+id+c.path, c.body); r.status != http.StatusConflict || !strings.Contains(string(r.body), "--local") {
			t.Fatalf("POST %s on a reported run: %d %s", c.path, r.status, r.body)
		}
	}
	more := []runbook.Event{
		{Seq: 6, Type: runbook.EventGateDecided, Step: "go", Actor: "root", Data: map[string]string{"decision": "go"}, Text: "--yes"},
		{Seq: 7, Type: runbook.EventRunFinished, Data: map[string]string{"status": "succeeded"}},
	}
	var res struct {
		Acked    int64 `json:"acked_seq"`
		Appended int   `json:"appended"`
	}
	h.must(http.StatusOK, runner, "POST", "/api/v1/runs/"+id+"/events", map[string]any{"events": append(evs, more...)}).json(t, &res)
	if res.Acked != 7 || res.Appended != 2 {
		t.Fatalf("a batch overlapping what the server has: %+v", res)
	}
	var d struct {
		runbook.Run
		State *runbook.RunState `json:"state"`
	}
	h.must(http.StatusOK, viewer, "GET", "/api/v1/runs/"+id, nil).json(t, &d)
	if d.Status != runbook.RunSucceeded || d.State.StartedBy != runner || len(d.State.Decisions) != 1 || d.State.Decisions[0].Actor != runner {
		t.Fatalf("the server's record: %s, started by %q, decisions %+v", d.Status, d.State.StartedBy, d.State.Decisions)
	}
	// Events into a run the server executes are refused.
	server := h.startRun(admin, searchRunbook, "staging", nil)
	if r := h.do(runner, "POST", "/api/v1/runs/"+server.ID+"/events", map[string]any{"events": evs[:1]}); r.status != http.StatusConflict {
		t.Fatalf("events into a server-executed run: %d %s", r.status, r.body)
	}
	// A reported run that has said nothing for long is shown as quiet: its
	// process may have died on the laptop (fault: a run "running" forever).
	quiet := store.NewRunID()
	h.must(http.StatusCreated, runner, "POST", "/api/v1/runs/reported", report(quiet, "staging"))
	h.must(http.StatusOK, runner, "POST", "/api/v1/runs/"+quiet+"/events", map[string]any{"events": []runbook.Event{
		{Seq: 1, Type: runbook.EventRunStarted, Time: time.Now().Add(-2 * time.Hour), Data: map[string]string{"env": "staging"}}}})
	if r := h.must(http.StatusOK, viewer, "GET", "/runs/"+quiet, nil); !strings.Contains(string(r.body), `id="reported-quiet"`) {
		t.Fatalf("a reported run quiet for 2h is not shown as quiet:\n%s", r.body)
	}
	if r := h.must(http.StatusOK, viewer, "GET", "/runs/"+id, nil); strings.Contains(string(r.body), `id="reported-quiet"`) {
		t.Fatalf("a finished reported run is shown as quiet")
	}
	// The audit log, the runs list and the postmortem show it.
	if r := h.must(http.StatusOK, admin, "GET", "/api/v1/audit?action=run.report", nil); !strings.Contains(string(r.body), id) {
		t.Fatalf("audit lacks the report: %s", r.body)
	}
	if r := h.must(http.StatusOK, viewer, "GET", "/api/v1/runs?runbook="+backupRunbook, nil); !strings.Contains(string(r.body), id) {
		t.Fatalf("runs list lacks the reported run: %s", r.body)
	}
	if r := h.must(http.StatusOK, viewer, "GET", "/runs/"+id+"/postmortem", nil); !strings.Contains(string(r.body), "Dump") {
		t.Fatalf("postmortem of the reported run lacks its steps: %s", r.body)
	}
}
