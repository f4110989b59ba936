package ui_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/opsbook/opsbook/internal/runbook"
)

// TestRunPageShowsHosts: a fan-out step's hosts appear on the run page
// under their step, each with its own result, batch and error, and a host
// never started (max_failures reached) says so.
func TestRunPageShowsHosts(t *testing.T) {
	ts := startServer(t)
	ctx := context.Background()
	run := runbook.Run{Runbook: backupRunbook, Environment: "staging", Title: "fan-out", Status: runbook.RunFailed, CreatedBy: "alice"}
	if err := ts.st.CreateRun(ctx, &run); err != nil {
		t.Fatal(err)
	}
	step := func(typ runbook.EventType, host string, data map[string]string, text string) runbook.Event {
		return runbook.Event{Type: typ, Step: "dump", Host: host, Attempt: 1, Data: data, Text: text}
	}
	_, err := ts.st.AppendEvents(ctx, run.ID,
		runbook.Event{Type: runbook.EventRunStarted, Actor: "alice", Data: map[string]string{"env": "staging"}},
		step(runbook.EventStepStarted, "", map[string]string{"hosts": "web1,web2,web3", "parallel": "1", "max_failures": "0"}, ""),
		step(runbook.EventStepStarted, "web1", map[string]string{"batch": "1"}, ""),
		step(runbook.EventStepFinished, "web1", map[string]string{"status": "succeeded", "exit_code": "0"}, ""),
		step(runbook.EventStepStarted, "web2", map[string]string{"batch": "2"}, ""),
		step(runbook.EventStepFinished, "web2", map[string]string{"status": "failed", "exit_code": "3"}, "exit status 3"),
		step(runbook.EventStepFinished, "", map[string]string{"status": "failed"}, "1 of 3 hosts failed"),
		runbook.Event{Type: runbook.EventRunFinished, Data: map[string]string{"status": "failed"}},
	)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest("GET", ts.url+"/runs/"+run.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.AddCookie(ts.signIn(t, "victor"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	body := string(b)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /runs/%s: %d\n%s", run.ID, resp.StatusCode, body)
	}
	hostRow := func(host string) string {
		i := strings.Index(body, `data-host="`+host+`"`)
		if i < 0 {
			t.Fatalf("run page has no row for host %s:\n%s", host, body)
		}
		end := strings.Index(body[i:], "</li>")
		return body[i : i+end]
	}
	for host, want := range map[string][]string{
		"web1": {"st-succeeded", "batch 1"},
		"web2": {"st-failed", "batch 2", "exit status 3"},
		"web3": {"not started"},
	} {
		row := hostRow(host)
		for _, w := range want {
			if !strings.Contains(row, w) {
				t.Errorf("row of %s lacks %q: %s", host, w, row)
			}
		}
	}
}
