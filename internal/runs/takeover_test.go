package runs_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/opsbook/opsbook/internal/runbook"
)

// TestTakeoverAfterKill9 is the fault "a server node dies": two real
// `opsbook serve` nodes on one PostgreSQL, and node A, which owns every
// run — two waiting at gates, one in an idempotent step, one in a step
// that is not, one still queued — is killed with SIGKILL. Without anyone
// calling resume, node B continues each of them within 2× the lease ttl,
// exactly as resume would: completed steps are not repeated, the
// idempotent step re-runs, the other asks "re-run?" and waits for the
// answer, the gates wait for a decision taken on B. Every run finishes
// with a gapless log. A also shows that a run waiting at a gate holds no
// worker: with 2 workers, the two gated runs do not keep the two steps
// that follow from executing.
func TestTakeoverAfterKill9(t *testing.T) {
	ws, ran := haWorkspace(t)
	ttl := 2 * time.Second
	c := newCluster(t, ws, ttl)
	a := c.start("A", 2)

	gated := []string{c.startRun(a, "ops/runbooks/gate.md", map[string]string{"TAG": "g1"}), c.startRun(a, "ops/runbooks/gate.md", map[string]string{"TAG": "g2"})}
	for _, id := range gated {
		c.waitRun(a, id, "waiting at its gate on A", 30*time.Second, waitingFor(runbook.WaitKindGate))
	}
	// Both workers of A are free again: these two execute at once.
	slow := c.startRun(a, "ops/runbooks/slow.md", map[string]string{"TAG": "s1"})
	once := c.startRun(a, "ops/runbooks/once.md", map[string]string{"TAG": "o1"})
	inSlow := func(d runDetail) bool {
		for _, st := range d.State.Steps {
			if st.ID == "slow" && st.Status == runbook.StepRunning {
				return true
			}
		}
		return false
	}
	c.waitRun(a, slow, "in its slow step on A", 30*time.Second, inSlow)
	c.waitRun(a, once, "in its slow step on A", 30*time.Second, inSlow)
	// No worker is free on A now, and B is not up: this one stays queued.
	queued := c.startRun(a, "ops/runbooks/gate.md", map[string]string{"TAG": "q1"})
	time.Sleep(300 * time.Millisecond)
	if d := c.run(a, queued); d.Status != runbook.RunPending {
		t.Fatalf("the fifth run is %s on A with its 2 workers busy, want pending (queued)", d.Status)
	}

	b := c.start("B", 4)
	// B has free workers; A's queued run may start there at once, which is
	// the database queue at work. Now A dies.
	a.kill9()
	killed := time.Now()

	// The runs A executed go on on B, nobody asking.
	takeover := map[string]time.Duration{}
	for _, id := range []string{gated[0], gated[1], slow, once} {
		c.waitRun(b, id, "taken over by B", 2*ttl+10*time.Second, func(d runDetail) bool {
			for _, ev := range c.events(b, id) {
				if ev.Type == runbook.EventRunResumed && ev.Time.After(killed.Add(-time.Second)) {
					takeover[id] = ev.Time.Sub(killed)
					return true
				}
			}
			return false
		})
	}
	for id, d := range takeover {
		t.Logf("run %s taken over %v after the kill", id, d.Round(time.Millisecond))
		if d > 2*ttl {
			t.Errorf("run %s taken over %v after the kill, more than 2× the lease ttl (%v)", id, d, ttl)
		}
	}

	// The step that is not idempotent asks before it runs again.
	c.waitRun(b, once, "asking whether to re-run its interrupted step", 30*time.Second, waitingFor(runbook.WaitKindAsk))
	if code := c.do(b, "POST", "/api/v1/runs/"+once+"/answer", map[string]string{"kind": runbook.WaitKindAsk, "choice": runbook.ChoiceRetry, "reason": "checked: safe"}, &runbook.Event{}); code != 200 {
		t.Fatalf("answer re-run on B: %d", code)
	}
	for _, id := range append(gated, queued) {
		c.waitRun(b, id, "waiting at its gate on B", 30*time.Second, waitingFor(runbook.WaitKindGate))
		if code := c.do(b, "POST", "/api/v1/runs/"+id+"/gate", map[string]string{"decision": "go", "reason": "after the kill"}, &runbook.Event{}); code != 200 {
			t.Fatalf("gate of %s on B: %d", id, code)
		}
	}
	all := []string{gated[0], gated[1], slow, once, queued}
	for _, id := range all {
		c.waitRun(b, id, "succeeded", 60*time.Second, func(d runDetail) bool { return d.Status == runbook.RunSucceeded })
		evs := c.events(b, id)
		for i, ev := range evs {
			if ev.Seq != int64(i+1) {
				t.Fatalf("run %s: event %d has seq %d: the log has a gap", id, i+1, ev.Seq)
			}
		}
	}

	// Steps completed before the kill ran once; the interrupted ones ran
	// again only after the takeover (idempotent, or by the answer).
	counts := ranCounts(t, ran)
	for _, tag := range []string{"g1", "g2", "q1"} {
		for _, step := range []string{"before", "after"} {
			if n := counts[tag+" "+step]; n != 1 {
				t.Errorf("%s %s ran %d times, want once", tag, step, n)
			}
		}
	}
	for _, tag := range []string{"s1", "o1"} {
		if n := counts[tag+" first"]; n != 1 {
			t.Errorf("%s first (completed before the kill) ran %d times, want once", tag, n)
		}
		if n := counts[tag+" slow"]; n != 2 {
			t.Errorf("%s slow (interrupted by the kill) ran %d times, want twice", tag, n)
		}
		if n := counts[tag+" last"]; n != 1 {
			t.Errorf("%s last ran %d times, want once", tag, n)
		}
	}
	if t.Failed() {
		t.Log(fmt.Sprint(counts))
	}
}
