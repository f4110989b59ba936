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
	time.Sleep(3 * time.Second) // the last ticks' runs created

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
	byID := map[string]runbook.Run{}
	for _, r := range all {
		byID[r.ID] = r
	}
	var (
		expected, missed, late int
		lateness               []time.Duration
		missedAt               []string
	)
	for _, tr := range triggers {
		sched, err := runs.ParseSchedule(tr.Schedule, tr.Timezone)
		if err != nil {
			return err
		}
		// Ticks up to the end of the window must have fired; later ones may
		// have, and are accounted for, not counted.
		for tick := sched.Next(tr.CreatedAt); ; tick = sched.Next(tick) {
			id := runs.TickRunID(tr.ID, tick)
			r, ok := byID[id]
			delete(byID, id)
			if tick.After(end) {
				if !ok {
					break
				}
				continue
			}
			expected++
			if !ok {
				missed++
				if len(missedAt) < 10 {
					missedAt = append(missedAt, tr.Name+"@"+tick.Format("15:04:05"))
				}
				continue
			}
			d := r.CreatedAt.Sub(tick)
			lateness = append(lateness, d)
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
	reported := 0
	for _, e := range missedAudit {
		n, _ := strconv.Atoi(e.Detail["missed"])
		reported += n
	}
	finished := 0
	for _, r := range all {
		if r.Status.Finished() {
			finished++
		}
	}
	p50, p99, max := quantiles(lateness)
	dp50, _, dmax := quantiles(down)
	table(fmt.Sprintf("ticks: 3 nodes, %d triggers × %d ticks (@every 1s), --scheduler-interval %v (load average %s at the end)", cfg.triggers, perTrigger, cfg.interval, load), [][2]string{
		{"ticks in the window", fmt.Sprint(expected)},
		{"runs started for them", fmt.Sprint(expected - missed)},
		{"missed (on-time tick with no run)", fmt.Sprintf("%d %v", missed, missedAt)},
		{"reported missed (audit trigger.missed)", fmt.Sprint(reported)},
		{"double fires (runs of no tick; audit fires of one tick or run)", fmt.Sprintf("%d; %d", unexplained, doubleAudit)},
		{"fired late (> FireGrace)", fmt.Sprint(late)},
		{"tick → run created p50 / p99 / max", fmt.Sprintf("%v / %v / %v", p50, p99, max)},
		{"node restarts (kill -9, start again)", fmt.Sprint(restarts)},
		{"restart (kill → serving) p50 / max", fmt.Sprintf("%v / %v", dp50, dmax)},
		{"runs finished / all runs", fmt.Sprintf("%d / %d", finished, len(all))},
	})
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
