package ui_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/opsbook/opsbook/internal/runbook"
)

// TestPostmortemPageIsTheReport: the run's postmortem page shows the
// document `opsbook postmortem` writes (internal/report) — skipped steps
// with their reason, anomalies in the timeline — rendered and sanitised.
func TestPostmortemPageIsTheReport(t *testing.T) {
	ts := startServer(t)
	ctx := context.Background()
	run := runbook.Run{Runbook: backupRunbook, Environment: "staging", Title: "pm", Status: runbook.RunSucceeded, CreatedBy: "alice"}
	if err := ts.st.CreateRun(ctx, &run); err != nil {
		t.Fatal(err)
	}
	_, err := ts.st.AppendEvents(ctx, run.ID,
		runbook.Event{Type: runbook.EventRunStarted, Actor: "alice", Data: map[string]string{"env": "staging"}},
		runbook.Event{Type: runbook.EventStepStarted, Step: "dump", Host: "local", Attempt: 1},
		runbook.Event{Type: runbook.EventStepFinished, Step: "dump", Host: "local", Attempt: 1, Data: map[string]string{"status": "succeeded", "exit_code": "0"}},
		runbook.Event{Type: runbook.EventStepSkipped, Step: "finish", Actor: "alice", Text: "not needed today"},
		runbook.Event{Type: runbook.EventAnomaly, Actor: "bob", Text: "replica lag spiked <script>alert(1)</script>"},
		runbook.Event{Type: runbook.EventRunFinished, Data: map[string]string{"status": "succeeded"}},
	)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", ts.url+"/runs/"+run.ID+"/postmortem", nil)
	req.AddCookie(ts.signIn(t, "victor"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	body := string(b)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d\n%s", resp.StatusCode, body)
	}
	for _, want := range []string{"not needed today", "replica lag spiked", "Timeline", "Estimate vs actual", "Deviations"} {
		if !strings.Contains(body, want) {
			t.Errorf("postmortem page lacks %q", want)
		}
	}
	if strings.Contains(body, "<script>alert(1)") {
		t.Error("an anomaly note's script reached the page unescaped")
	}
}
