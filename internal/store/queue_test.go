package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/store"
	"github.com/opsbook/opsbook/internal/store/storetest"
)

// TestQueueClaimsOnce is the fault "several nodes claim at the same
// moment": four nodes claim from one queue of 60 runs concurrently, each
// run is claimed by exactly one of them.
func TestQueueClaimsOnce(t *testing.T) {
	storetest.ForEachDialect(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		const n = 60
		for range n {
			r := runbook.Run{Runbook: "q.md", Environment: "dev", Status: runbook.RunPending}
			if err := s.CreateRun(ctx, &r); err != nil {
				t.Fatal(err)
			}
			if added, err := s.Enqueue(ctx, store.QueuedRun{RunID: r.ID, Actor: "alice"}); err != nil || !added {
				t.Fatalf("enqueue: %v %v", added, err)
			}
			if added, err := s.Enqueue(ctx, store.QueuedRun{RunID: r.ID, Actor: "system"}); err != nil || added {
				t.Fatalf("enqueue twice: added %v, %v", added, err)
			}
		}
		var mu sync.Mutex
		claimedBy := map[string][]string{}
		var wg sync.WaitGroup
		for _, node := range []string{"n1", "n2", "n3", "n4"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					got, err := s.ClaimQueued(ctx, node, 3)
					if err != nil {
						t.Error(err)
						return
					}
					if len(got) == 0 {
						return
					}
					mu.Lock()
					for _, q := range got {
						claimedBy[q.RunID] = append(claimedBy[q.RunID], node)
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if len(claimedBy) != n {
			t.Fatalf("%d runs claimed, want %d", len(claimedBy), n)
		}
		for id, nodes := range claimedBy {
			if len(nodes) != 1 {
				t.Errorf("run %s claimed by %v", id, nodes)
			}
		}
		if d, _ := s.QueueDepth(ctx); d != 0 {
			t.Errorf("queue depth %d after claiming all", d)
		}
	})
}

// TestQueueDeadNodeClaims is the fault "a node dies holding claims": its
// claims go back to the queue once its lease expired, a live node's stay.
func TestQueueDeadNodeClaims(t *testing.T) {
	storetest.ForEachDialect(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		ids := map[string]string{}
		for _, node := range []string{"live-node", "dead-node"} {
			r := runbook.Run{Runbook: "q.md", Environment: "dev", Status: runbook.RunPending}
			if err := s.CreateRun(ctx, &r); err != nil {
				t.Fatal(err)
			}
			s.Enqueue(ctx, store.QueuedRun{RunID: r.ID, Actor: "alice"})
			if err := s.HeartbeatNode(ctx, node, "", time.Hour); err != nil {
				t.Fatal(err)
			}
			if got, err := s.ClaimQueued(ctx, node, 1); err != nil || len(got) != 1 {
				t.Fatalf("claim: %v %v", got, err)
			}
			ids[node] = r.ID
		}
		if n, err := s.ReleaseDeadClaims(ctx); err != nil || n != 0 {
			t.Fatalf("released %d claims of live nodes (%v)", n, err)
		}
		s.HeartbeatNode(ctx, "dead-node", "", time.Millisecond)
		time.Sleep(5 * time.Millisecond)
		if n, err := s.ReleaseDeadClaims(ctx); err != nil || n != 1 {
			t.Fatalf("released %d claims, want the dead node's 1 (%v)", n, err)
		}
		got, err := s.ClaimQueued(ctx, "live-node", 5)
		if err != nil || len(got) != 1 || got[0].RunID != ids["dead-node"] {
			t.Fatalf("claim after release: %+v %v", got, err)
		}
		nodes, _ := s.Nodes(ctx)
		alive := map[string]bool{}
		for _, n := range nodes {
			alive[n.ID] = n.Alive
		}
		if !alive["live-node"] || alive["dead-node"] {
			t.Errorf("nodes alive: %v", alive)
		}
	})
}
