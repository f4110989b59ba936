package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/opsbook/opsbook/internal/client"
	"github.com/opsbook/opsbook/internal/runbook"
)

type latencyConfig struct {
	steps, runs int
}

const latencyRunbook = "ops/runbooks/latency.md"

// latency is the third figure: events appended on node A reach
// an SSE viewer on node B. The runs wait at a gate first, so they are
// claimed by A (the only node up) before B starts; the viewer on B
// connects, the gate is decided on B, and A executes the steps, each
// appending step.started, step.output and step.finished. Latency is the
// viewer's arrival time minus the event's time (stamped by A when it
// appended it; both on this host's clock).
func latency(dsn string, cfg latencyConfig) error {
	ws, err := os.MkdirTemp("", "opsbook-bench-ha-ws-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(ws)
	var b strings.Builder
	b.WriteString("---\nkind: runbook\ntitle: Latency\n---\n\n# Latency\n\n## Steps\n\n### Go\n\n```gate {id=go approvers=1}\nGo on.\n```\n\n")
	for i := 1; i <= cfg.steps; i++ {
		fmt.Fprintf(&b, "### Step %d\n\n```sh {id=s%d}\necho step %d\n```\n\n", i, i, i)
	}
	os.MkdirAll(filepath.Join(ws, "ops/runbooks"), 0o755)
	os.WriteFile(filepath.Join(ws, "opsbook.yaml"), []byte("name: ha\nenvironments:\n  - name: dev\n"), 0o644)
	if err := os.WriteFile(filepath.Join(ws, latencyRunbook), []byte(b.String()), 0o644); err != nil {
		return err
	}
	c, data, err := newCluster(dsn, ws, 15*time.Second)
	if err != nil {
		return err
	}
	defer os.RemoveAll(data)
	defer c.Stop()
	a, err := c.Start("A", 64)
	if err != nil {
		return err
	}
	var ids []string
	for range cfg.runs {
		id, err := c.StartRun(a, latencyRunbook, nil)
		if err != nil {
			return err
		}
		ids = append(ids, id)
	}
	for _, id := range ids {
		for {
			d, err := c.Run(a, id)
			if err != nil {
				return err
			}
			if w := d.Waiting(); w != nil && w.Kind == runbook.WaitKindGate {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	bn, err := c.Start("B", 64)
	if err != nil {
		return err
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	owners, err := leaseOwners(db)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if owners[id] != a.Name {
			return fmt.Errorf("run %s is owned by %q, not A", id, owners[id])
		}
	}

	cl, err := client.New(bn.Base, c.Key)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	var mu sync.Mutex
	var plain, output []time.Duration
	var wg sync.WaitGroup
	connected := time.Now()
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, err := cl.Stream(ctx, id, 0, func(ev runbook.Event) error {
				arrived := time.Now()
				if !ev.Time.After(connected) {
					return nil // the history the stream starts with
				}
				mu.Lock()
				defer mu.Unlock()
				if ev.Type == runbook.EventStepOutput {
					output = append(output, arrived.Sub(ev.Time))
				} else {
					plain = append(plain, arrived.Sub(ev.Time))
				}
				return nil
			})
			if err != nil || status != runbook.RunSucceeded {
				fmt.Fprintf(os.Stderr, "stream of %s: %s %v\n", id, status, err)
			}
		}()
	}
	time.Sleep(500 * time.Millisecond) // the streams connected
	for _, id := range ids {
		if _, err := c.Do(bn, "POST", "/api/v1/runs/"+id+"/gate", map[string]string{"decision": "go", "reason": "bench"}, nil); err != nil {
			return err
		}
	}
	start := time.Now()
	wg.Wait()
	elapsed := time.Since(start)
	load := loadavg()

	mu.Lock()
	defer mu.Unlock()
	all := append(append([]time.Duration(nil), plain...), output...)
	n, no := len(plain), len(output)
	over := 0
	for _, d := range all {
		if d > 200*time.Millisecond {
			over++
		}
	}
	p50, p99, max := quantiles(plain)
	o50, o99, omax := quantiles(output)
	a50, a99, amax := quantiles(all)
	table(fmt.Sprintf("latency: %d runs of %d steps executing on A, SSE viewers on B (load average %s at the end)", cfg.runs, cfg.steps, load), [][2]string{
		{"events seen on B", fmt.Sprintf("%d (%d step.output)", n+no, no)},
		{"events/s appended on A", fmt.Sprintf("%.0f", float64(n+no)/elapsed.Seconds())},
		{"A → B, all events p50 / p99 / max", fmt.Sprintf("%v / %v / %v", a50, a99, amax)},
		{"A → B, step.started/finished… p50 / p99 / max", fmt.Sprintf("%v / %v / %v", p50, p99, max)},
		{"A → B, step.output p50 / p99 / max", fmt.Sprintf("%v / %v / %v", o50, o99, omax)},
		{"events over 200 ms", fmt.Sprintf("%d (%.1f%%)", over, 100*float64(over)/float64(max1(len(all))))},
	})
	return nil
}

func max1(n int) int { return max(n, 1) }
