package engine

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/store"
)

// watchRounds runs rounds of watch checks as node-a,
// calling each after every round.
func (h *harness) watchRounds(runID string, rounds int, each func(i int)) *runbook.RunState {
	h.t.Helper()
	ctx := context.Background()
	for i := 0; i < rounds; i++ {
		if _, err := h.eng.WatchRound(ctx, "node-a"); err != nil {
			h.t.Fatal(err)
		}
		if each != nil {
			each(i)
		}
		time.Sleep(60 * time.Millisecond)
	}
	s, err := h.eng.State(ctx, runID)
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

// watchedPlan is a one-step runbook with one guard (on_breach given) and
// watch:, its rollback, and the fake Prometheus as the environment's.
func (h *harness) watchedPlan(prom *promServer, onBreach, watch, action string) *Plan {
	h.t.Helper()
	d := h.doc("rb.md", guardFront(onBreach)+"watch: "+watch+"\n", step("Change", "sh {id=change}", action))
	p := h.plan(d, nil)
	p.PrometheusURL = prom.URL
	p.Rollback = h.doc("undo.md", "kind: rollback\ntitle: Undo\n", step("Undo", "sh {id=undo}", "echo undo >> order"))
	return p
}

// Fault class: a metric that goes bad hours after a change that
// "succeeded". With watch:, the guards keep being evaluated after the run
// succeeds; the breach is recorded once (while it lasts) on the run, which
// stays succeeded; on_breach: rollback asks people and never rolls back on
// its own; the watch ends on time.
func TestWatchAfterSuccessRecordsBreachAndNeverRollsBack(t *testing.T) {
	prom := newPromServer(t, "0.5")
	h := newHarness(t)
	p := h.watchedPlan(prom, "rollback", "2s", "echo change >> order")
	status, s := h.run(p, StartOptions{}, ExecOptions{})
	if status != runbook.RunSucceeded || s.Watch == nil || s.Watch.Left(time.Now()) <= 0 {
		t.Fatalf("after the run: %s, watch %+v", status, s.Watch)
	}
	ctx := context.Background()
	if _, err := h.st.GetWatch(ctx, s.RunID); err != nil {
		t.Fatalf("no watch in the store: %v", err)
	}
	s = h.watchRounds(s.RunID, 40, func(i int) {
		switch i {
		case 3:
			prom.set("7") // breaches, and stays breached for a while
		case 12:
			prom.set("0.2")
		}
	})
	if s.Status != runbook.RunSucceeded || s.Rollback != nil {
		t.Fatalf("the watch changed the run: %s, rollback %+v", s.Status, s.Rollback)
	}
	if got := h.read("order"); got != "change\n" {
		t.Fatalf("order %q: the watch ran something", got)
	}
	var watchBreaches []runbook.Breach
	for _, b := range s.Breaches {
		if b.Watch {
			watchBreaches = append(watchBreaches, b)
		}
	}
	if len(watchBreaches) != 1 || watchBreaches[0].Action != "ask-rollback" || !strings.Contains(watchBreaches[0].Text, "decide whether to run its rollback") {
		t.Fatalf("watch breaches %+v, want one asking about the rollback", watchBreaches)
	}
	if !s.Watch.Finished || s.Watch.Breaches != 1 {
		t.Fatalf("watch %+v, want finished with one breach", s.Watch)
	}
	if _, err := h.st.GetWatch(ctx, s.RunID); err == nil {
		t.Fatal("the watch row outlived the watch")
	}
}

// Fault class: Prometheus unreachable during the watch. Blindness is
// recorded (not silently skipped), once and then every tenth check.
func TestWatchRecordsBlindGuards(t *testing.T) {
	prom := newPromServer(t, "500")
	h := newHarness(t)
	p := h.watchedPlan(prom, "pause", "1s", "true")
	_, s := h.run(p, StartOptions{}, ExecOptions{})
	s = h.watchRounds(s.RunID, 25, nil)
	blind := 0
	for _, a := range s.Anomalies {
		if strings.Contains(a.Text, "cannot be evaluated") {
			blind++
		}
	}
	if blind == 0 {
		t.Fatalf("no anomaly for a guard that could not be evaluated: %+v", s.Anomalies)
	}
	if !s.Watch.Finished {
		t.Fatalf("watch %+v", s.Watch)
	}
}

// Two nodes watching at once check each watch once per interval: a breach
// is recorded once, not once per node.
func TestWatchOneNodeAtATime(t *testing.T) {
	prom := newPromServer(t, "0.5")
	h := newHarness(t)
	p := h.watchedPlan(prom, "pause", "1s", "true")
	_, s := h.run(p, StartOptions{}, ExecOptions{})
	prom.set("7") // breached for the whole watch, after the run
	ctx := context.Background()
	done := make(chan struct{})
	for _, node := range []string{"node-a", "node-b"} {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := 0; i < 30; i++ {
				if _, err := h.eng.WatchRound(ctx, node); err != nil && !strings.Contains(err.Error(), store.ErrLeaseLost.Error()) {
					t.Error(err)
				}
				time.Sleep(40 * time.Millisecond)
			}
		}()
	}
	<-done
	<-done
	s, _ = h.eng.State(ctx, s.RunID)
	n := 0
	for _, b := range s.Breaches {
		if b.Watch {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d watch breaches recorded, want 1", n)
	}
}
