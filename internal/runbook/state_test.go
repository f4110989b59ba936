package runbook

import (
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// log numbers events and spaces them one second apart, as a store would.
func log(evs ...Event) []Event {
	for i := range evs {
		evs[i].RunID = "r1"
		evs[i].Seq = int64(i + 1)
		evs[i].Time = t0.Add(time.Duration(i) * time.Second)
	}
	return evs
}

func data(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func started() Event {
	return Event{Type: EventRunStarted, Text: "Backup", Data: data("env", "staging", "snapshot", "sha256:ab", "user", "ann", "from", "b")}
}

func TestReplayHappyPath(t *testing.T) {
	s := Replay(log(
		started(),
		Event{Type: EventStepSkipped, Step: "a", Text: "--from b"},
		Event{Type: EventStepStarted, Step: "b", Host: "local", Attempt: 1},
		Event{Type: EventStepOutput, Step: "b", Host: "local", Stream: "stdout", Text: "hello\n"},
		Event{Type: EventStepVerified, Step: "b", Host: "local", Data: data("kind", "expect", "result", "fail"), Text: "no match"},
		Event{Type: EventStepRetry, Step: "b", Attempt: 2, Data: data("backoff", "1s"), Text: "expect failed"},
		Event{Type: EventStepStarted, Step: "b", Host: "local", Attempt: 2},
		Event{Type: EventStepOutput, Step: "b", Host: "local", Stream: "stdout", Text: "hello world\n"},
		Event{Type: EventStepVerified, Step: "b", Host: "local", Data: data("kind", "expect", "result", "pass")},
		Event{Type: EventStepPublished, Step: "b", Host: "local", Data: data("version", "15", "count", "3")},
		Event{Type: EventStepFinished, Step: "b", Host: "local", Data: data("status", "succeeded", "exit_code", "0", "duration_ms", "12")},
		Event{Type: EventAnomaly, Actor: "bob", Text: "latency spike"},
		Event{Type: EventStepStarted, Step: "c", Host: "local", Attempt: 1},
		Event{Type: EventStepPublished, Step: "c", Host: "local", Data: data("version", "16")},
		Event{Type: EventStepFinished, Step: "c", Host: "local", Data: data("status", "failed", "exit_code", "2"), Text: "exit status 2"},
		Event{Type: EventRunFinished, Data: data("status", "failed")},
	))
	if s.Status != RunFailed || s.Environment != "staging" || s.Snapshot != "sha256:ab" || s.StartedBy != "ann" || s.From != "b" || s.Title != "Backup" {
		t.Fatalf("run fields wrong: %+v", s)
	}
	if s.LastSeq != 16 || !s.FinishedAt.Equal(t0.Add(15*time.Second)) {
		t.Errorf("LastSeq %d FinishedAt %v", s.LastSeq, s.FinishedAt)
	}
	if got := ids(s.Steps); got != "a b c" {
		t.Fatalf("steps = %q", got)
	}
	a, b, c := s.Step("a"), s.Step("b"), s.Step("c")
	if a.Status != StepSkipped || a.SkipReason != "--from b" || !a.Done() {
		t.Errorf("a = %+v", a)
	}
	if b.Status != StepSucceeded || b.Attempts != 2 || len(b.Retries) != 1 || b.Retries[0].NextAttempt != 2 || b.Retries[0].Backoff != "1s" {
		t.Errorf("b = %+v", b)
	}
	if len(b.Checks) != 2 || b.Checks[0].Passed || !b.Checks[1].Passed || b.Checks[0].Detail != "no match" {
		t.Errorf("b checks = %+v", b.Checks)
	}
	if b.OutputSize != int64(len("hello\nhello world\n")) || b.Host("local").OutputSize != b.OutputSize {
		t.Errorf("b output size %d", b.OutputSize)
	}
	if !b.StartedAt.Equal(t0.Add(2*time.Second)) || b.Duration(time.Time{}) != 8*time.Second {
		t.Errorf("b times %v %v", b.StartedAt, b.Duration(time.Time{}))
	}
	if c.Status != StepFailed || c.ExitCode == nil || *c.ExitCode != 2 || c.Error != "exit status 2" {
		t.Errorf("c = %+v", c)
	}
	if s.Outputs["version"] != "16" || s.Outputs["count"] != "3" || b.Outputs["version"] != "15" {
		t.Errorf("outputs = %v, b's = %v", s.Outputs, b.Outputs)
	}
	if len(s.Anomalies) != 1 || s.Anomalies[0].Actor != "bob" || s.Anomalies[0].Text != "latency spike" {
		t.Errorf("anomalies = %+v", s.Anomalies)
	}
}

func ids(steps []*StepState) string {
	var s []string
	for _, st := range steps {
		s = append(s, st.ID)
	}
	return strings.Join(s, " ")
}

func TestReplayGateNeedsDistinctApprovers(t *testing.T) {
	evs := log(
		started(),
		Event{Type: EventGateWaiting, Step: "go", Data: data("approvers", "2"), Text: "error rate < 1%"},
		Event{Type: EventGateDecided, Step: "go", Actor: "ann", Data: data("decision", "go"), Text: "looks fine"},
		Event{Type: EventGateDecided, Step: "go", Actor: "ann", Data: data("decision", "go"), Text: "again"},
		Event{Type: EventGateDecided, Step: "go", Actor: "bob", Data: data("decision", "go"), Text: "agreed"},
	)
	steps := []struct {
		after      int
		status     RunStatus
		waiting    bool
		approvals  int
		stepStatus StepStatus
	}{
		{1, RunRunning, false, 0, ""},
		{2, RunWaiting, true, 0, StepWaiting},
		{3, RunWaiting, true, 1, StepWaiting},
		{4, RunWaiting, true, 1, StepWaiting}, // the same person twice counts once
		{5, RunRunning, false, 0, StepRunning},
	}
	for _, tt := range steps {
		t.Run(string(rune('0'+tt.after)), func(t *testing.T) {
			s := Replay(evs[:tt.after])
			if s.Status != tt.status || (s.Waiting != nil) != tt.waiting {
				t.Fatalf("status %s waiting %+v", s.Status, s.Waiting)
			}
			if s.Waiting != nil && (len(s.Waiting.Approvals) != tt.approvals || s.Waiting.Approvers != 2 || s.Waiting.Text != "error rate < 1%") {
				t.Errorf("waiting = %+v", s.Waiting)
			}
			if st := s.Step("go"); tt.stepStatus != "" && st.Status != tt.stepStatus {
				t.Errorf("step status %s, want %s", st.Status, tt.stepStatus)
			}
		})
	}
	if s := Replay(evs); len(s.Decisions) != 3 || len(s.Step("go").Decisions) != 3 {
		t.Errorf("every decision is kept for the record: %d", len(s.Decisions))
	}
}

func TestReplayInterruptAndResume(t *testing.T) {
	s := Replay(log(
		started(),
		Event{Type: EventStepStarted, Step: "a", Host: "local", Attempt: 1},
		Event{Type: EventStepFinished, Step: "a", Host: "local", Data: data("status", "succeeded", "exit_code", "0")},
		Event{Type: EventStepStarted, Step: "b", Host: "local", Attempt: 1},
		Event{Type: EventRunInterrupted, Text: "step b was running"},
		Event{Type: EventRunResumed, Actor: "ann"},
	))
	if s.Status != RunRunning || len(s.Interrupt) != 1 || len(s.Resumes) != 1 || s.Resumes[0].Actor != "ann" {
		t.Fatalf("state = %+v", s)
	}
	b := s.Step("b")
	if b.Status != StepRunning || !b.Resumed || b.Done() || !s.Step("a").Done() {
		t.Errorf("b = %+v", b)
	}
	if s := Replay(log(started(), Event{Type: EventRunInterrupted})); s.Status != RunInterrupted {
		t.Errorf("interrupted run status %s", s.Status)
	}
}

func TestReplayRollbackPhase(t *testing.T) {
	rb := func(ev Event) Event {
		if ev.Data == nil {
			ev.Data = map[string]string{}
		}
		ev.Data["phase"] = PhaseRollback
		return ev
	}
	s := Replay(log(
		started(),
		Event{Type: EventStepStarted, Step: "migrate", Host: "local", Attempt: 1},
		Event{Type: EventStepFinished, Step: "migrate", Host: "local", Data: data("status", "failed", "exit_code", "1")},
		Event{Type: EventRollbackStart, Text: "step migrate failed (on_fail=rollback)", Data: data("document", "rb.md")},
		rb(Event{Type: EventStepStarted, Step: "migrate", Host: "local", Attempt: 1}),
		rb(Event{Type: EventStepPublished, Step: "migrate", Host: "local", Data: data("restored", "yes")}),
		rb(Event{Type: EventStepFinished, Step: "migrate", Host: "local", Data: data("status", "succeeded", "exit_code", "0")}),
		Event{Type: EventRollbackFinish, Data: data("status", "succeeded")},
		Event{Type: EventRunFinished, Data: data("status", "rolled_back")},
	))
	if s.Status != RunRolledBack || s.Rollback == nil || s.Rollback.Status != StepSucceeded || s.Rollback.Document != "rb.md" {
		t.Fatalf("rollback = %+v", s.Rollback)
	}
	if len(s.Steps) != 1 || s.Step("migrate").Status != StepFailed {
		t.Errorf("main step = %+v", s.Step("migrate"))
	}
	if len(s.Rollback.Steps) != 1 || s.RollbackStep("migrate").Status != StepSucceeded || s.StepIn(PhaseRollback, "migrate") != s.RollbackStep("migrate") {
		t.Errorf("rollback steps = %+v", s.Rollback.Steps)
	}
	if _, ok := s.Outputs["restored"]; ok {
		t.Errorf("rollback outputs leak into the main outputs: %v", s.Outputs)
	}
}

func TestReplayFanOut(t *testing.T) {
	s := Replay(log(
		started(),
		Event{Type: EventStepStarted, Step: "web", Host: "web1", Attempt: 1},
		Event{Type: EventStepStarted, Step: "web", Host: "web2", Attempt: 1},
		Event{Type: EventStepFinished, Step: "web", Host: "web1", Data: data("status", "failed", "exit_code", "1")},
	))
	web := s.Step("web")
	if web.Status != StepRunning || web.Host("web1").Status != StepFailed || web.Host("web2").Status != StepRunning {
		t.Fatalf("one host finished must not finish a fan-out step: %+v", web)
	}
	s.Apply(Event{Seq: 5, Type: EventStepFinished, Step: "web", Host: "web2", Data: data("status", "succeeded", "exit_code", "0")})
	s.Apply(Event{Seq: 6, Type: EventStepFinished, Step: "web", Data: data("status", "succeeded"), Text: "1 of 2 hosts failed (max_failures=1)"})
	if web.Status != StepSucceeded || len(web.Hosts) != 2 {
		t.Errorf("aggregate: %+v", web)
	}
}

func TestApplyIgnoresReplayedEvents(t *testing.T) {
	evs := log(started(), Event{Type: EventStepStarted, Step: "a", Host: "local", Attempt: 1},
		Event{Type: EventStepOutput, Step: "a", Host: "local", Text: "12345"})
	s := Replay(evs)
	s.Apply(evs[2])
	if s.Step("a").OutputSize != 5 {
		t.Errorf("a duplicate event was applied twice: %d", s.Step("a").OutputSize)
	}
}

func TestCheckDecision(t *testing.T) {
	gate := Replay(log(started(),
		Event{Type: EventGateWaiting, Step: "go", Data: data("approvers", "2")},
		Event{Type: EventGateDecided, Step: "go", Actor: "ann", Data: data("decision", "go"), Text: "ok"}))
	ask := Replay(log(started(),
		Event{Type: EventAskWaiting, Step: "s", Data: data("options", "retry,skip,abort")}))
	manual := Replay(log(started(), Event{Type: EventManualWaiting, Step: "m"}))
	done := Replay(log(started(), Event{Type: EventRunFinished, Data: data("status", "succeeded")}))
	running := Replay(log(started()))

	tests := []struct {
		name    string
		state   *RunState
		d       DecisionRequest
		wantErr string
	}{
		{"second approver", gate, DecisionRequest{Kind: "gate", Step: "go", Actor: "bob", Choice: "go", Reason: "fine"}, ""},
		{"no-go from the same person is allowed", gate, DecisionRequest{Kind: "gate", Step: "go", Actor: "ann", Choice: "no-go", Reason: "changed my mind"}, ""},
		{"same approver twice", gate, DecisionRequest{Kind: "gate", Step: "go", Actor: "ann", Choice: "go", Reason: "x"}, "ann has already approved; it needs 2 distinct approvers"},
		{"gate needs a reason", gate, DecisionRequest{Kind: "gate", Step: "go", Actor: "bob", Choice: "go"}, "needs a reason"},
		{"gate choice", gate, DecisionRequest{Kind: "gate", Step: "go", Actor: "bob", Choice: "yes", Reason: "x"}, `must be "go" or "no-go"`},
		{"wrong step", gate, DecisionRequest{Kind: "gate", Step: "other", Actor: "bob", Choice: "go", Reason: "x"}, "waits for a gate decision on step go"},
		{"no actor", gate, DecisionRequest{Kind: "gate", Step: "go", Choice: "go", Reason: "x"}, "needs the name"},
		{"ask option", ask, DecisionRequest{Kind: "ask", Step: "s", Actor: "a", Choice: "skip"}, ""},
		{"ask option not offered", ask, DecisionRequest{Kind: "ask", Step: "s", Actor: "a", Choice: "rollback"}, "choose one of retry, skip, abort"},
		{"manual", manual, DecisionRequest{Kind: "manual", Step: "m", Actor: "a"}, ""},
		{"manual wrong kind", manual, DecisionRequest{Kind: "gate", Step: "m", Actor: "a", Choice: "go", Reason: "x"}, "waits for a manual decision"},
		{"finished run", done, DecisionRequest{Kind: "manual", Step: "m", Actor: "a"}, "is succeeded: nothing to decide"},
		{"not waiting", running, DecisionRequest{Kind: "manual", Step: "m", Actor: "a"}, "not waiting"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.state.CheckDecision(tt.d)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestDecisionEventRoundTrip(t *testing.T) {
	for _, d := range []DecisionRequest{
		{Kind: "gate", Step: "g", Actor: "ann", Choice: "no-go", Reason: "error rate"},
		{Kind: "ask", Step: "s", Phase: PhaseRollback, Actor: "ann", Choice: "skip", Reason: "done by hand"},
		{Kind: "manual", Step: "m", Actor: "ann", Reason: "checked"},
	} {
		t.Run(d.Kind, func(t *testing.T) {
			waiting := map[string]EventType{"gate": EventGateWaiting, "ask": EventAskWaiting, "manual": EventManualWaiting}[d.Kind]
			wev := Event{Type: waiting, Step: d.Step, Data: data("options", "skip", "phase", d.Phase)}
			ev := d.Event()
			s := Replay(log(started(), wev, ev))
			if s.Waiting != nil || s.Status != RunRunning || len(s.Decisions) != 1 {
				t.Fatalf("decision did not resolve the wait: %+v", s)
			}
			got := s.Decisions[0]
			want := d.Choice
			if d.Kind == "manual" {
				want = ChoiceConfirmed
			}
			if got.Actor != d.Actor || got.Choice != want || got.Reason != d.Reason || got.Phase != d.Phase {
				t.Errorf("decision = %+v", got)
			}
		})
	}
}
