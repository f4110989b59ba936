package api_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/runs"
	"github.com/opsbook/opsbook/internal/secret"
	"github.com/opsbook/opsbook/internal/server"
	"github.com/opsbook/opsbook/internal/store"
	"github.com/opsbook/opsbook/internal/store/pgtest"
)

// TestScheduleFiresOnceAcrossNodes is the fault "several nodes fire one
// tick, and one dies halfway": three server nodes on one PostgreSQL check
// a per-minute trigger for 60 ticks, all at once, each at its own moment
// within the tick, and at every tick one of them is cut off after a
// random few milliseconds (its context cancelled: every store call from
// then on fails, wherever it was — before the run was created, after it,
// before the tick was marked). Every tick starts exactly one run, with
// the tick's own id. Then no node is up for ten minutes and all three come
// back at once: each trigger fires the current tick once and reports the
// nine missed ones once (TestScheduledTrigger covers skip against
// catch-up for a missed latest tick).
func TestScheduleFiresOnceAcrossNodes(t *testing.T) {
	dsn := pgtest.DSN(t)
	h := newHarness(t, dsn)
	h.publishAll()
	svc := h.serviceUser()
	ctx := context.Background()
	nodes := []*server.Server{h.srv}
	for range 2 {
		st, err := store.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		keys, _ := secret.NewKeyring("test", testKey)
		ws, _ := filepath.Abs("testdata/workspace")
		srv, err := server.New(server.Config{Store: st, Workspace: ws, Keys: keys, Workers: 4})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			srv.Shutdown(sctx)
			st.Close()
		})
		nodes = append(nodes, srv)
	}
	created := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	triggers := map[string]*store.Trigger{}
	for _, tr := range []store.Trigger{{Name: "every-minute-skip"}, {Name: "every-minute-catchup", CatchUp: true}} {
		tr.Kind, tr.Runbook, tr.Environment, tr.Schedule = store.TriggerSchedule, searchRunbook, "staging", "* * * * *"
		tr.ServiceUser, tr.Enabled, tr.CreatedBy, tr.CreatedAt = svc.ID, true, "test", created
		if err := h.st.CreateTrigger(ctx, &tr); err != nil {
			t.Fatal(err)
		}
		triggers[tr.Name] = &tr
	}
	const ticks = 60
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 1; i <= ticks; i++ {
		tick := created.Add(time.Duration(i) * time.Minute)
		dying := rng.IntN(len(nodes))
		cut := time.Duration(rng.IntN(8000)) * time.Microsecond
		var wg sync.WaitGroup
		for n, srv := range nodes {
			now := tick.Add(time.Duration(rng.IntN(30_000)) * time.Millisecond)
			nctx := ctx
			if n == dying {
				var cancel context.CancelFunc
				nctx, cancel = context.WithTimeout(ctx, cut)
				defer cancel()
			}
			wg.Add(1)
			go func() { defer wg.Done(); srv.FireDueTriggers(nctx, now) }()
		}
		wg.Wait()
	}
	// A pass of a live node after the last tick, as the next scheduler
	// round would be: a tick whose every firing node died is fired now.
	nodes[0].FireDueTriggers(ctx, created.Add(ticks*time.Minute+40*time.Second))

	all, err := h.st.ListRuns(ctx, store.RunFilter{Runbook: searchRunbook, Limit: store.MaxRunLimit})
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]runbook.Run{}
	for _, r := range all {
		byID[r.ID] = r
	}
	for name, tr := range triggers {
		for i := 1; i <= ticks; i++ {
			id := runs.TickRunID(tr.ID, created.Add(time.Duration(i)*time.Minute))
			if _, ok := byID[id]; !ok {
				t.Errorf("%s: tick %d started no run (missed)", name, i)
			}
			delete(byID, id)
		}
	}
	for id := range byID {
		t.Errorf("run %s belongs to no tick: a tick fired twice", id)
	}
	if len(all) != 2*ticks {
		t.Fatalf("%d runs for %d ticks of 2 triggers", len(all), ticks)
	}

	// No node up for ten minutes, then one comes back.
	back := created.Add((ticks+10)*time.Minute + 30*time.Second)
	var wg sync.WaitGroup
	for _, srv := range nodes {
		wg.Add(1)
		go func() { defer wg.Done(); srv.FireDueTriggers(ctx, back) }()
	}
	wg.Wait()
	after, _ := h.st.ListRuns(ctx, store.RunFilter{Runbook: searchRunbook, Limit: store.MaxRunLimit})
	if got := len(after) - len(all); got != 2 {
		t.Fatalf("%d runs after the outage, want 2 (each trigger's current tick, once)", got)
	}
	var audit struct {
		Items []struct {
			Target string
			Detail map[string]string
		}
	}
	h.must(200, admin, "GET", "/api/v1/audit?action=trigger.missed", nil).json(t, &audit)
	if len(audit.Items) != 2 {
		t.Fatalf("missed ticks reported %d times, want once per trigger: %+v", len(audit.Items), audit.Items)
	}
	for _, e := range audit.Items {
		if e.Detail["missed"] != "9" {
			t.Errorf("%s: missed = %s, want 9", e.Target, e.Detail["missed"])
		}
	}
}

// TestScheduleMissedReportedOnce is the fault "nodes come back from an
// outage at once, around a tick": one node's check comes just before a
// minute, another's just after. The first sees the last minute's tick on
// time and nine missed; the second sees that tick as missed too (ten)
// and the new one on time. Both had read the trigger before either
// claimed; before, both claims moved the trigger's fire time forward, so
// the missed ticks were reported twice, once with a tick that ran
// (bench/ha -mode ticks: every trigger reported twice after a 66 s outage).
// Only the node whose read is still current claims and reports.
func TestScheduleMissedReportedOnce(t *testing.T) {
	dsn := pgtest.DSN(t)
	h := newHarness(t, dsn)
	h.publishAll()
	svc := h.serviceUser()
	ctx := context.Background()
	nodes := []*server.Server{h.srv}
	for range 2 {
		st, err := store.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		keys, _ := secret.NewKeyring("test", testKey)
		ws, _ := filepath.Abs("testdata/workspace")
		srv, err := server.New(server.Config{Store: st, Workspace: ws, Keys: keys, Workers: 4})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			srv.Shutdown(sctx)
			st.Close()
		})
		nodes = append(nodes, srv)
	}
	const rounds = 8
	for r := range rounds {
		created := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(r) * 24 * time.Hour)
		for _, catchUp := range []bool{false, true} {
			tr := store.Trigger{Name: fmt.Sprintf("outage-%d-%v", r, catchUp), Kind: store.TriggerSchedule, Runbook: searchRunbook, Environment: "staging",
				Schedule: "* * * * *", CatchUp: catchUp, ServiceUser: svc.ID, Enabled: true, CreatedBy: "test", CreatedAt: created}
			if err := h.st.CreateTrigger(ctx, &tr); err != nil {
				t.Fatal(err)
			}
		}
		// Minute 10's tick is 59.9 s old for node 0 and 60.1 s old (missed)
		// for nodes 1 and 2, which also see minute 11's.
		back := created.Add(10*time.Minute + time.Minute)
		var wg sync.WaitGroup
		for i, srv := range nodes {
			now := back.Add(100 * time.Millisecond)
			if i == 0 {
				now = back.Add(-100 * time.Millisecond)
			}
			wg.Add(1)
			go func() { defer wg.Done(); srv.FireDueTriggers(ctx, now) }()
		}
		wg.Wait()
		// Out of the next rounds' way (their passes are a day later).
		for _, catchUp := range []bool{false, true} {
			if err := h.st.DeleteTrigger(ctx, fmt.Sprintf("outage-%d-%v", r, catchUp)); err != nil {
				t.Fatal(err)
			}
		}
	}
	var audit struct {
		Items []struct {
			Target string
			Detail map[string]string
		}
	}
	h.must(200, admin, "GET", "/api/v1/audit?action=trigger.missed", nil).json(t, &audit)
	reports := map[string]int{}
	for _, e := range audit.Items {
		reports[e.Target]++
	}
	for r := range rounds {
		for _, catchUp := range []bool{false, true} {
			target := fmt.Sprintf("trigger/outage-%d-%v", r, catchUp)
			if reports[target] != 1 {
				t.Errorf("%s: missed ticks reported %d times, want once", target, reports[target])
			}
		}
	}
	h.cancelActive()
}
