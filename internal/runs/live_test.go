package runs_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opsbook/opsbook/internal/client"
	"github.com/opsbook/opsbook/internal/runbook"
)

// liveGates is how many gates the live runbook stops at.
const liveGates = 7

// writeLiveRunbook adds ops/runbooks/live.md: 30 short steps, then
// liveGates gates each followed by a step.
func writeLiveRunbook(t *testing.T, ws string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("---\nkind: runbook\ntitle: Live\n---\n\n# Live\n\n## Steps\n\n")
	for i := 1; i <= 30; i++ {
		fmt.Fprintf(&b, "### Step %d\n\n```sh {id=s%d}\nsleep 0.05\n```\n\n", i, i)
	}
	for i := 1; i <= liveGates; i++ {
		fmt.Fprintf(&b, "### Gate %d\n\n```gate {id=g%d approvers=1}\nGo on.\n```\n\n### After %d\n\n```sh {id=a%d}\ntrue\n```\n\n", i, i, i, i)
	}
	if err := os.WriteFile(filepath.Join(ws, "ops/runbooks/live.md"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestLiveAcrossNodes is the fault "the viewer and the decider are not on
// the node that executes the run". A run executes on node A; a live view
// (SSE) on node B shows its events as they are appended, by PostgreSQL
// LISTEN/NOTIFY rather than by the stream's 1 s poll: half of them arrive
// within 250 ms (a poll would deliver them 500 ms late on average). Gates
// decided on B wake the run on A at once, not at its next poll of the
// store (every 5 s on PostgreSQL): half the wakes within 1 s, over
// liveGates gates. A run on
// A cancelled through B is cancelled by A.
func TestLiveAcrossNodes(t *testing.T) {
	ws, _ := haWorkspace(t)
	writeLiveRunbook(t, ws)
	c := newCluster(t, ws, 2*time.Second)
	a := c.start("A", 4)
	id := c.startRun(a, "ops/runbooks/live.md", nil)
	c.waitRun(a, id, "executing on A", 30*time.Second, func(d runDetail) bool { return d.Status == runbook.RunRunning })
	// A run waiting at a gate on A, to be cancelled through B.
	cancelled := c.startRun(a, "ops/runbooks/gate.md", map[string]string{"TAG": "c1"})
	c.waitRun(a, cancelled, "waiting at its gate on A", 30*time.Second, waitingFor(runbook.WaitKindGate))
	b := c.start("B", 4)

	cl, err := client.New(b.base, c.key)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var mu sync.Mutex
	var latencies []time.Duration
	gateWaiting := make(chan string, liveGates)
	connected := time.Now()
	go cl.Stream(ctx, id, 0, func(ev runbook.Event) error {
		arrived := time.Now()
		if ev.Time.After(connected) && ev.Type != runbook.EventStepOutput {
			mu.Lock()
			latencies = append(latencies, arrived.Sub(ev.Time))
			mu.Unlock()
		}
		if ev.Type == runbook.EventGateWaiting {
			gateWaiting <- ev.Step
		}
		return nil
	})
	for i := 0; i < liveGates; i++ {
		select {
		case step := <-gateWaiting:
			if code := c.do(b, "POST", "/api/v1/runs/"+id+"/gate", map[string]string{"decision": "go", "reason": "on B"}, &runbook.Event{}); code != 200 {
				t.Fatalf("gate %s on B: %d", step, code)
			}
		case <-ctx.Done():
			t.Fatalf("gate %d never shown on B", i+1)
		}
	}
	c.waitRun(b, id, "succeeded", time.Minute, func(d runDetail) bool { return d.Status == runbook.RunSucceeded })

	// Cancel on B reaches the run executing on A, which records it; before,
	// B answered 409 "executes in another process".
	if code := c.do(b, "POST", "/api/v1/runs/"+cancelled+"/cancel", map[string]string{"reason": "from B"}, nil); code != 202 {
		t.Fatalf("cancel on B of a run executing on A: %d", code)
	}
	if d := c.run(b, cancelled); d.Status != runbook.RunCancelled {
		t.Fatalf("run cancelled through B is %s", d.Status)
	}

	// Wake latency: a gate's decision (recorded by B) to the next step's
	// start (recorded by A).
	var wakes []time.Duration
	var decided time.Time
	for _, ev := range c.events(b, id) {
		switch {
		case ev.Type == runbook.EventGateDecided:
			decided = ev.Time
		case ev.Type == runbook.EventStepStarted && !decided.IsZero():
			wakes = append(wakes, ev.Time.Sub(decided))
			decided = time.Time{}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(latencies) < 20 || len(wakes) != liveGates {
		t.Fatalf("%d events measured on B, %d gate wakes", len(latencies), len(wakes))
	}
	slices.Sort(latencies)
	slices.Sort(wakes)
	t.Logf("A→B event latency over %d events: p50 %v, max %v; gate wake on A after a decision on B: p50 %v, max %v",
		len(latencies), latencies[len(latencies)/2], latencies[len(latencies)-1], wakes[len(wakes)/2], wakes[len(wakes)-1])
	if p50 := latencies[len(latencies)/2]; p50 > 250*time.Millisecond {
		t.Errorf("A→B event latency p50 %v: events reach B by polling, not by notification", p50)
	}
	if p50 := wakes[len(wakes)/2]; p50 > time.Second {
		t.Errorf("gate wake p50 %v: the run on A noticed decisions taken on B by polling, not by notification", p50)
	}
}
