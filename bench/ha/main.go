// Command ha measures the several-node promises of the run service on a
// real PostgreSQL (a throwaway cluster, or -dsn): see README.md.
//
//	go run ./bench/ha -mode dispatch   # queue: enqueue on one node → claimed on another
//	go run ./bench/ha -mode takeover   # 3 real nodes, 50 runs, kill -9 of one
//	go run ./bench/ha -mode ticks      # 3 real nodes, 1,000 ticks, random kill -9 and restart
//	go run ./bench/ha -mode latency    # SSE on node B of events appended on node A
package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/store"
	"github.com/opsbook/opsbook/internal/store/pgtest"
	"github.com/opsbook/opsbook/internal/testbin"
)

func main() {
	mode := flag.String("mode", "dispatch", "dispatch | takeover | ticks | latency")
	dsn := flag.String("dsn", "", "postgres:// URL of an empty database (default: a throwaway cluster)")
	n := flag.Int("n", 200, "dispatch: runs per measurement")
	var tk takeoverConfig
	flag.IntVar(&tk.runs, "runs", 50, "takeover: concurrent runs")
	flag.DurationVar(&tk.ttl, "ttl", 4*time.Second, "takeover, ticks: --lease-ttl of the nodes")
	flag.DurationVar(&tk.slow, "slow", 30*time.Second, "takeover: length of the long steps")
	var tc ticksConfig
	flag.IntVar(&tc.ticks, "ticks", 1000, "ticks: ticks in all (spread over -triggers triggers of one tick a second)")
	flag.IntVar(&tc.triggers, "triggers", 4, "ticks: scheduled triggers (@every 1s; every other one catch_up)")
	flag.DurationVar(&tc.outage, "outage", 70*time.Second, "ticks: after the restarts, every node down this long, then all back (0: none)")
	flag.DurationVar(&tc.interval, "scheduler-interval", 200*time.Millisecond, "ticks: --scheduler-interval of the nodes")
	var lc latencyConfig
	flag.IntVar(&lc.steps, "steps", 400, "latency: steps per run (each appends started, output, finished)")
	flag.IntVar(&lc.runs, "latency-runs", 2, "latency: runs executing at once on node A")
	flag.Parse()
	tc.ttl = tk.ttl
	if *dsn == "" {
		c, err := pgtest.Start()
		if err != nil {
			log.Fatal(err)
		}
		defer c.Stop()
		*dsn = newDatabase(c.AdminDSN(), "bench_ha")
	}
	defer testbin.Cleanup() // the opsbook binary the real-node modes built
	var err error
	switch *mode {
	case "dispatch":
		err = dispatch(*dsn, *n)
	case "takeover":
		err = takeover(*dsn, tk)
	case "ticks":
		err = ticks(*dsn, tc)
	case "latency":
		err = latency(*dsn, lc)
	default:
		err = fmt.Errorf("unknown -mode %q", *mode)
	}
	if err != nil {
		testbin.Cleanup()
		log.Fatal(err)
	}
}

func newDatabase(admin, name string) string {
	db, err := sql.Open("pgx", admin)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		log.Fatal(err)
	}
	u, err := url.Parse(admin)
	if err != nil {
		log.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// dispatch measures the store's queue as nodes use it: a run enqueued
// through one connection pool is claimed by one of two "nodes" (pools of
// their own) that sleep until PostgreSQL notifies them (opsbook_queue,
// LISTEN) or their 500 ms poll — what runs.Service's dispatcher does.
func dispatch(dsn string, n int) error {
	ctx := context.Background()
	producer, err := store.Open(ctx, dsn)
	if err != nil {
		return err
	}
	defer producer.Close()
	type claim struct {
		id string
		at time.Time
	}
	claims := make(chan claim, 4*n)
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	for i := range 2 {
		st, err := store.Open(ctx, dsn)
		if err != nil {
			return err
		}
		defer st.Close()
		wake := make(chan struct{}, 1)
		go st.Listen(ctx, func(string, string) {
			select {
			case wake <- struct{}{}:
			default:
			}
		}, store.ChannelQueue)
		node := fmt.Sprintf("node-%d", i)
		go func() {
			poll := time.NewTicker(500 * time.Millisecond)
			defer poll.Stop()
			for {
				got, err := st.ClaimQueued(ctx, node, 64)
				if err != nil && ctx.Err() == nil {
					log.Print(err)
				}
				for _, q := range got {
					claims <- claim{q.RunID, time.Now()}
				}
				if len(got) > 0 {
					continue
				}
				select {
				case <-ctx.Done():
					return
				case <-wake:
				case <-poll.C:
				}
			}
		}()
	}
	time.Sleep(time.Second) // listeners connected
	newRun := func() string {
		r := runbook.Run{Runbook: "bench.md", Environment: "dev", Status: runbook.RunPending}
		if err := producer.CreateRun(ctx, &r); err != nil {
			log.Fatal(err)
		}
		return r.ID
	}
	var seq []time.Duration
	for range n {
		id := newRun()
		if _, err := producer.Enqueue(ctx, store.QueuedRun{RunID: id, Actor: "bench"}); err != nil {
			return err
		}
		queued := time.Now()
		c := <-claims
		if c.id != id {
			return errors.New("claimed another run")
		}
		seq = append(seq, c.at.Sub(queued))
	}
	report("opsbook queue, sequential (1 in flight)", seq)

	ids := make([]string, n)
	for i := range ids {
		ids[i] = newRun()
	}
	queuedAt := make([]time.Time, n)
	index := map[string]int{}
	for i, id := range ids {
		index[id] = i
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var enqueue []time.Duration
	for g := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < n; i += 20 {
				start := time.Now()
				mu.Lock()
				queuedAt[i] = start
				mu.Unlock()
				if _, err := producer.Enqueue(ctx, store.QueuedRun{RunID: ids[i], Actor: "bench"}); err != nil {
					log.Fatal(err)
				}
				mu.Lock()
				enqueue = append(enqueue, time.Since(start))
				mu.Unlock()
			}
		}()
	}
	var burst []time.Duration
	for range n {
		c := <-claims
		mu.Lock()
		burst = append(burst, c.at.Sub(queuedAt[index[c.id]]))
		mu.Unlock()
	}
	wg.Wait()
	report(fmt.Sprintf("opsbook queue, burst (%d runs from 20 goroutines)", n), burst)
	report("  of which the enqueue (durable insert) itself", enqueue)
	return nil
}

// quantiles are p50, p99 and max of d (sorted in place), rounded.
func quantiles(d []time.Duration) (p50, p99, max time.Duration) {
	if len(d) == 0 {
		return 0, 0, 0
	}
	slices.Sort(d)
	r := func(x time.Duration) time.Duration { return x.Round(100 * time.Microsecond) }
	return r(d[len(d)/2]), r(d[min(len(d)-1, (len(d)*99+99)/100-1)]), r(d[len(d)-1])
}

// table prints a two-column figures table, the machine's load average
// first: the machine these figures come from is shared.
func table(title string, rows [][2]string) {
	fmt.Printf("\n%s\n\n| | |\n|---|---:|\n", title)
	for _, r := range rows {
		fmt.Printf("| %s | %s |\n", r[0], r[1])
	}
	fmt.Println()
}

// loadavg is /proc/loadavg's first three fields.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func report(name string, d []time.Duration) {
	slices.Sort(d)
	r := func(x time.Duration) time.Duration { return x.Round(100 * time.Microsecond) }
	fmt.Printf("%s: p50 %v p99 %v max %v\n", name, r(d[len(d)/2]), r(d[len(d)*99/100]), r(d[len(d)-1]))
}

func init() { log.SetFlags(0); log.SetOutput(os.Stderr) }
