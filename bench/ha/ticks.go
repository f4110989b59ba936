package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/opsbook/opsbook/internal/audit"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/runs"
	"github.com/opsbook/opsbook/internal/store"
)

type ticksConfig struct {
	ticks, triggers int
	interval        time.Duration // --scheduler-interval
	ttl             time.Duration
	outage          time.Duration // every node down at the end, then all back
}

const tickRunbook = "ops/runbooks/tick.md"

// ticks is the second scenario: scheduled triggers of one tick a
// second (`@every 1s`, the fastest schedule the product accepts) fire
// across 3 real nodes checking every -scheduler-interval, while a random
// node is killed with SIGKILL and started again, one after another, for
// the whole window. Every tick happens while at least two nodes are up,
// so by the documented rule (a tick noticed within runs.FireGrace is on
// time and fires) every tick must start exactly one run.
func ticks(dsn string, cfg ticksConfig) error {
	ctx := context.Background()
	ws, err := os.MkdirTemp("", "opsbook-bench-ha-ws-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(ws)
	if err := os.MkdirAll(filepath.Join(ws, "ops/runbooks"), 0o755); err != nil {
		return err
	}
	os.WriteFile(filepath.Join(ws, "opsbook.yaml"), []byte("name: ha\nenvironments:\n  - name: dev\n"), 0o644)
	if err := os.WriteFile(filepath.Join(ws, tickRunbook), []byte("---\nkind: runbook\ntitle: Tick\n---\n\n# Tick\n\n## Steps\n\n### Tick\n\n```sh {id=tick}\ntrue\n```\n"), 0o644); err != nil {
		return err
	}
	c, data, err := newCluster(dsn, ws, cfg.ttl, "--scheduler-interval", cfg.interval.String())
	if err != nil {
		return err
	}
	defer os.RemoveAll(data)
	defer c.Stop()
	nodes, err := startNodes(c, 3, 64)
	if err != nil {
		return err
	}
	a := nodes[0]
	if _, err := c.Do(a, "POST", "/api/v1/users", map[string]any{"name": "svc", "service": true, "teams": []string{"admins"}}, nil); err != nil {
		return err
	}
	if _, err := c.Do(a, "POST", "/api/v1/snapshots", map[string]string{"runbook": tickRunbook}, nil); err != nil {
		return err
	}
	st, err := store.Open(ctx, dsn)
	if err != nil {
		return err
	}
	defer st.Close()
	var triggers []store.Trigger
	for i := range cfg.triggers {
		name := fmt.Sprintf("tick-%d", i)
		if _, err := c.Do(a, "POST", "/api/v1/triggers", map[string]any{"name": name, "kind": "schedule", "runbook": tickRunbook,
			"environment": "dev", "schedule": "@every 1s", "catch_up": i%2 == 1, "service_user": "svc"}, nil); err != nil {
			return err
		}
		tr, err := st.GetTrigger(ctx, name)
		if err != nil {
			return err
		}
		triggers = append(triggers, tr)
	}
	perTrigger := (cfg.ticks + cfg.triggers - 1) / cfg.triggers
	end := triggers[len(triggers)-1].CreatedAt.Add(time.Duration(perTrigger)*time.Second + 500*time.Millisecond)

	// Random restarts: a random node is killed with SIGKILL and started
	// again (same name, as a restarted service is), then a pause of 2–6 s.
	var mu sync.Mutex
	restarts := 0
	var down []time.Duration
	stop := make(chan struct{})
	done := make(chan error, 1)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 14))
	go func() {
		for {
			select {
			case <-stop:
				done <- nil
				return
			case <-time.After(time.Duration(2000+rng.IntN(4000)) * time.Millisecond):
			}
			i := rng.IntN(len(nodes))
			nodes[i].Kill9()
			killed := time.Now()
			n, err := c.Start(nodes[i].Name, 64)
			if err != nil {
				done <- err
				return
			}
			mu.Lock()
			nodes[i] = n
			restarts++
			down = append(down, time.Since(killed))
			mu.Unlock()
		}
	}()
	time.Sleep(time.Until(end))
	close(stop)
	if err := <-done; err != nil {
		return err
	}
	load := loadavg()

	// An outage: every node killed, none up for cfg.outage, then all
	// three started again. By the rule, a tick more than FireGrace old
	// when a node is back was missed: reported once, and no run for it
	// (not even with catch_up: the current tick, on time, is the run).
	var outageFrom, outageTo time.Time
	if cfg.outage > 0 {
		for _, n := range nodes {
			n.Kill9()
		}
		outageFrom = time.Now()
		time.Sleep(cfg.outage)
		outageTo = time.Now()
		if _, err := startNodes(c, 3, 64); err != nil {
			return err
		}
	}
	// Settled: every trigger's fire time has passed a point a few seconds
	// after the last restart (the first checks after an outage fire up to
	// a minute of on-time ticks each, which takes a while).
	final := time.Now().Add(3 * time.Second)
	settled := time.Now()
	for {
		caughtUp := true
		for _, tr := range triggers {
			got, err := st.GetTrigger(ctx, tr.Name)
			if err != nil {
				return err
			}
			caughtUp = caughtUp && got.LastFiredAt.After(final)
		}
		if caughtUp {
			break
		}
		if time.Since(settled) > 3*time.Minute {
			fmt.Println("the triggers' fire times did not pass", final.Format("15:04:05"), "within 3 minutes")
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	settledIn := time.Since(settled)

	all, err := listRuns(ctx, st)
	if err != nil {
		return err
	}
	fires, err := listAudit(ctx, st, "trigger.fire")
	if err != nil {
		return err
	}
	missedAudit, err := listAudit(ctx, st, "trigger.missed")
	if err != nil {
		return err
	}
	failed, err := listAudit(ctx, st, "trigger.failed")
	if err != nil {
		return err
	}
	failures := map[string]int{}
	for _, e := range failed {
		failures[e.Detail["error"]]++
	}
	byID := map[string]runbook.Run{}
	ranIDs := map[string]bool{}
	for _, r := range all {
		byID[r.ID] = r
		ranIDs[r.ID] = true
	}
	// Each tick up to final is one of: must fire (a node was up, or it was
	// less than FireGrace old when they came back), must be missed (older
	// than that), or too close to a boundary to say (a node killed while
	// firing it; the first scheduler pass after the outage starts within a
	// few seconds of outageTo).
	const margin = 3 * time.Second
	var (
		mustFire, mustMiss, unsure, missed, firedAgainst, unfired, late int
		lateness, outageLateness                                        []time.Duration
		missedAt                                                        []string
	)
	for _, tr := range triggers {
		sched, err := runs.ParseSchedule(tr.Schedule, tr.Timezone)
		if err != nil {
			return err
		}
		for tick := sched.Next(tr.CreatedAt); ; tick = sched.Next(tick) {
			id := runs.TickRunID(tr.ID, tick)
			r, ok := byID[id]
			delete(byID, id)
			if tick.After(final) {
				if !ok {
					break
				}
				continue // fired after the measurement: neither counted nor unexplained
			}
			if !ok {
				unfired++
			}
			inOutage := cfg.outage > 0 && tick.After(outageFrom.Add(-margin)) && !tick.After(outageTo)
			age := outageTo.Sub(tick) // at the first pass after the outage, give or take margin
			switch {
			case inOutage && tick.Before(outageFrom) || inOutage && age > runs.FireGrace-margin && age < runs.FireGrace+margin:
				unsure++
				continue
			case inOutage && age >= runs.FireGrace+margin:
				mustMiss++
				if ok {
					firedAgainst++
				}
				continue
			}
			mustFire++
			if !ok {
				missed++
				if len(missedAt) < 10 {
					missedAt = append(missedAt, tr.Name+"@"+tick.Format("15:04:05"))
				}
				continue
			}
			d := r.CreatedAt.Sub(tick)
			if inOutage {
				outageLateness = append(outageLateness, d)
			} else {
				lateness = append(lateness, d)
			}
			if d > runs.FireGrace {
				late++
			}
		}
	}
	unexplained := len(byID) // runs of no tick: a tick fired under another id
	perRun := map[string]int{}
	perTick := map[string]map[string]bool{}
	for _, e := range fires {
		perRun[e.Detail["run"]]++
		k := e.Target + "@" + e.Detail["fire"]
		if perTick[k] == nil {
			perTick[k] = map[string]bool{}
		}
		perTick[k][e.Detail["run"]] = true
	}
	doubleAudit := 0
	for _, n := range perRun {
		if n > 1 {
			doubleAudit += n - 1
		}
	}
	for _, rs := range perTick {
		if len(rs) > 1 {
			doubleAudit += len(rs) - 1
		}
	}
	// Missed ticks are reported once (one audit entry per trigger and
	// outage), and only ticks that started no run.
	reported, reportedRan := 0, 0
	reports := map[string]int{}
	for _, e := range missedAudit {
		n, _ := strconv.Atoi(e.Detail["missed"])
		reported += n
		reports[e.Target]++
		first, err1 := time.Parse(time.RFC3339, e.Detail["first"])
		last, err2 := time.Parse(time.RFC3339, e.Detail["last"])
		if err1 != nil || err2 != nil {
			continue
		}
		for _, tr := range triggers {
			if "trigger/"+tr.Name != e.Target {
				continue
			}
			sched, _ := runs.ParseSchedule(tr.Schedule, tr.Timezone)
			for tick := first; !tick.After(last); tick = sched.Next(tick) {
				if ranIDs[runs.TickRunID(tr.ID, tick)] {
					reportedRan++
				}
			}
		}
	}
	lateFires := 0
	for _, e := range fires {
		if e.Detail["late"] == "true" {
			lateFires++
		}
	}
	finished := 0
	for _, r := range all {
		if r.Status.Finished() {
			finished++
		}
	}
	p50, p99, max := quantiles(lateness)
	dp50, _, dmax := quantiles(down)
	o50, _, omax := quantiles(outageLateness)
	rows := [][2]string{
		{"ticks (due before the end)", fmt.Sprint(mustFire + mustMiss + unsure)},
		{"ticks that must fire (a node up, or < 1 min old when one came back)", fmt.Sprint(mustFire)},
		{"  of which missed (no run)", fmt.Sprintf("%d %v", missed, missedAt)},
		{"  of which fired twice (runs of no tick; audit fires of one tick or run)", fmt.Sprintf("%d; %d", unexplained, doubleAudit)},
		{"  fired late (audit trigger.fire late=true) / run created > 1 min after its tick", fmt.Sprintf("%d / %d", lateFires, late)},
		{"  tick → run created, nodes up: p50 / p99 / max", fmt.Sprintf("%v / %v / %v", p50, p99, max)},
	}
	if cfg.outage > 0 {
		rows = append(rows,
			[2]string{fmt.Sprintf("outage: no node up for %v; ticks ≥ 1 min old when nodes came back (must not run)", outageTo.Sub(outageFrom).Round(time.Millisecond)), fmt.Sprint(mustMiss)},
			[2]string{"  of which started a run anyway", fmt.Sprint(firedAgainst)},
			[2]string{"ticks < 1 min old when nodes came back: tick → run created p50 / max", fmt.Sprintf("%v / %v", o50, omax)},
			[2]string{"ticks within 3 s of a boundary (either way is right)", fmt.Sprint(unsure)},
		)
	}
	rows = append(rows,
		[2]string{"ticks without a run / reported missed (audit trigger.missed)", fmt.Sprintf("%d / %d", unfired, reported)},
		[2]string{"missed reports per trigger; ticks reported missed that ran", fmt.Sprintf("%v; %d", reports, reportedRan)},
		[2]string{"failed fires (audit trigger.failed)", fmt.Sprint(len(failed))},
		[2]string{"every trigger's fire time past the end + 3 s after", settledIn.Round(time.Millisecond).String()},
		[2]string{"node restarts before the outage (kill -9, start again)", fmt.Sprint(restarts)},
		[2]string{"restart (kill → serving) p50 / max", fmt.Sprintf("%v / %v", dp50, dmax)},
		[2]string{"runs finished / all runs", fmt.Sprintf("%d / %d", finished, len(all))},
	)
	table(fmt.Sprintf("ticks: 3 nodes, %d triggers of @every 1s, %v of random restarts, --scheduler-interval %v (load average %s before the outage)",
		cfg.triggers, time.Duration(perTrigger)*time.Second, cfg.interval, load), rows)
	for msg, n := range failures {
		fmt.Printf("trigger.failed ×%d: %s\n", n, msg)
	}
	if cfg.outage > 0 {
		fmt.Printf("outage %s – %s\n", outageFrom.Format("15:04:05.000"), outageTo.Format("15:04:05.000"))
	}
	return nil
}

func listRuns(ctx context.Context, st *store.Store) ([]runbook.Run, error) {
	var all []runbook.Run
	f := store.RunFilter{Runbook: tickRunbook, Limit: store.MaxRunLimit}
	for {
		page, err := st.ListRuns(ctx, f)
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		if len(page) < f.Limit {
			return all, nil
		}
		f.Before = page[len(page)-1].ID
	}
}

func listAudit(ctx context.Context, st *store.Store, action string) ([]audit.Entry, error) {
	var all []audit.Entry
	f := store.AuditFilter{Action: action, Limit: store.MaxRunLimit}
	for {
		page, err := st.ListAudit(ctx, f)
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		if len(page) < f.Limit {
			return all, nil
		}
		f.Before = page[len(page)-1].Seq
	}
}
