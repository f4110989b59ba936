// Command ha measures the several-node promises of the run service on a
// real PostgreSQL (a throwaway cluster, or -dsn): see README.md.
//
//	go run ./bench/ha -mode dispatch   # queue: enqueue on one node → claimed on another
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
	"sync"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/store"
	"github.com/opsbook/opsbook/internal/store/pgtest"
)

func main() {
	mode := flag.String("mode", "dispatch", "dispatch")
	dsn := flag.String("dsn", "", "postgres:// URL of an empty database (default: a throwaway cluster)")
	n := flag.Int("n", 200, "dispatch: runs per measurement")
	flag.Parse()
	if *dsn == "" {
		c, err := pgtest.Start()
		if err != nil {
			log.Fatal(err)
		}
		defer c.Stop()
		*dsn = newDatabase(c.AdminDSN(), "bench_ha")
	}
	var err error
	switch *mode {
	case "dispatch":
		err = dispatch(*dsn, *n)
	default:
		err = fmt.Errorf("unknown -mode %q", *mode)
	}
	if err != nil {
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

func report(name string, d []time.Duration) {
	slices.Sort(d)
	r := func(x time.Duration) time.Duration { return x.Round(100 * time.Microsecond) }
	fmt.Printf("%s: p50 %v p99 %v max %v\n", name, r(d[len(d)/2]), r(d[len(d)*99/100]), r(d[len(d)-1]))
}

func init() { log.SetFlags(0); log.SetOutput(os.Stderr) }
