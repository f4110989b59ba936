package fanout_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opsbook/opsbook/internal/fanout"
	"github.com/opsbook/opsbook/internal/runbook"
)

func hosts(n int) []runbook.Host {
	hs := make([]runbook.Host, n)
	for i := range hs {
		hs[i] = runbook.Host{Name: fmt.Sprintf("h%02d", i+1), Address: "10.0.0.1"}
	}
	return hs
}

// recorder runs a fake action, failing the named hosts, and records the
// peak concurrency and the start/finish order.
type recorder struct {
	fail    map[string]bool
	delay   time.Duration
	running atomic.Int32
	peak    atomic.Int32
	mu      sync.Mutex
	events  []string // "+h01" started, "-h01" finished
}

func (r *recorder) run(ctx context.Context, h runbook.Host) error {
	n := r.running.Add(1)
	for {
		p := r.peak.Load()
		if n <= p || r.peak.CompareAndSwap(p, n) {
			break
		}
	}
	r.log("+" + h.Name)
	time.Sleep(r.delay)
	r.log("-" + h.Name)
	r.running.Add(-1)
	if r.fail[h.Name] {
		return errors.New("boom")
	}
	return nil
}

func (r *recorder) log(e string) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func summary(results []fanout.HostResult) string {
	var b strings.Builder
	for _, r := range results {
		switch {
		case r.Succeeded():
			fmt.Fprintf(&b, "%s:ok/b%d ", r.Host.Name, r.Batch)
		case r.Started:
			fmt.Fprintf(&b, "%s:fail/b%d ", r.Host.Name, r.Batch)
		default:
			fmt.Fprintf(&b, "%s:skip ", r.Host.Name)
		}
	}
	return strings.TrimSpace(b.String())
}

func TestRun(t *testing.T) {
	tests := []struct {
		name     string
		n        int
		policy   fanout.Policy
		fail     []string
		want     string
		maxPeak  int32
		wantPeak int32 // when > 0, the peak must reach it
	}{
		{"all-at-once", 4, fanout.Policy{}, nil, "h01:ok/b1 h02:ok/b1 h03:ok/b1 h04:ok/b1", 4, 4},
		{"parallel-2", 5, fanout.Policy{Parallel: 2}, nil, "h01:ok/b1 h02:ok/b1 h03:ok/b1 h04:ok/b1 h05:ok/b1", 2, 2},
		{"batch-count", 5, fanout.Policy{Batch: "2"}, nil, "h01:ok/b1 h02:ok/b1 h03:ok/b2 h04:ok/b2 h05:ok/b3", 2, 2},
		{"batch-percent-rounds-up", 10, fanout.Policy{Batch: "25%"}, nil,
			"h01:ok/b1 h02:ok/b1 h03:ok/b1 h04:ok/b2 h05:ok/b2 h06:ok/b2 h07:ok/b3 h08:ok/b3 h09:ok/b3 h10:ok/b4", 3, 3},
		{"batch-larger-than-hosts", 3, fanout.Policy{Batch: "10"}, nil, "h01:ok/b1 h02:ok/b1 h03:ok/b1", 3, 3},
		{"parallel-within-batch", 6, fanout.Policy{Batch: "3", Parallel: 1}, nil,
			"h01:ok/b1 h02:ok/b1 h03:ok/b1 h04:ok/b2 h05:ok/b2 h06:ok/b2", 1, 1},
		{"default-stops-at-first-failure", 4, fanout.Policy{Parallel: 1}, []string{"h02"}, "h01:ok/b1 h02:fail/b1 h03:skip h04:skip", 1, 1},
		{"max-failures-1-tolerates-one", 5, fanout.Policy{Parallel: 1, MaxFailures: "1"}, []string{"h02", "h04"},
			"h01:ok/b1 h02:fail/b1 h03:ok/b1 h04:fail/b1 h05:skip", 1, 1},
		{"max-failures-percent-rounds-down", 10, fanout.Policy{Parallel: 1, MaxFailures: "15%"}, []string{"h01", "h02"},
			"h01:fail/b1 h02:fail/b1 h03:skip h04:skip h05:skip h06:skip h07:skip h08:skip h09:skip h10:skip", 1, 1},
		{"failure-stops-next-batches", 6, fanout.Policy{Batch: "2"}, []string{"h01"},
			"h01:fail/b1 h02:ok/b1 h03:skip h04:skip h05:skip h06:skip", 2, 2},
		{"max-failures-100%", 3, fanout.Policy{Batch: "1", MaxFailures: "100%"}, []string{"h01", "h02", "h03"},
			"h01:fail/b1 h02:fail/b2 h03:fail/b3", 1, 1},
		{"no-hosts", 0, fanout.Policy{Batch: "25%"}, nil, "", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{fail: map[string]bool{}, delay: 20 * time.Millisecond}
			for _, f := range tt.fail {
				rec.fail[f] = true
			}
			results := fanout.Run(context.Background(), hosts(tt.n), tt.policy, rec.run)
			if got := summary(results); got != tt.want {
				t.Errorf("results\n got %s\nwant %s", got, tt.want)
			}
			if p := rec.peak.Load(); p > tt.maxPeak || (tt.wantPeak > 0 && p < tt.wantPeak) {
				t.Errorf("peak concurrency %d, want between %d and %d", p, tt.wantPeak, tt.maxPeak)
			}
			// Rolling: nothing of batch k+1 starts before batch k finished.
			batchOf := map[string]int{}
			for _, r := range results {
				batchOf[r.Host.Name] = r.Batch
			}
			finished := map[int]int{}
			size := map[int]int{}
			for _, r := range results {
				if r.Started {
					size[r.Batch]++
				}
			}
			for _, e := range rec.events {
				b := batchOf[e[1:]]
				if e[0] == '-' {
					finished[b]++
					continue
				}
				if b > 1 && finished[b-1] != size[b-1] {
					t.Errorf("%s (batch %d) started before batch %d finished: %v", e[1:], b, b-1, rec.events)
				}
			}
			for _, r := range results {
				if !r.Started && !errors.Is(r.Err, fanout.ErrNotStarted) {
					t.Errorf("%s not started with err %v, want ErrNotStarted", r.Host.Name, r.Err)
				}
				if r.Started && r.Duration < rec.delay {
					t.Errorf("%s duration %s, want at least %s", r.Host.Name, r.Duration, rec.delay)
				}
			}
		})
	}
}

func TestNotStartedReason(t *testing.T) {
	rec := &recorder{fail: map[string]bool{"h01": true, "h02": true}}
	results := fanout.Run(context.Background(), hosts(3), fanout.Policy{Parallel: 1, MaxFailures: "1"}, rec.run)
	want := "not started: 2 host(s) failed, more than max_failures=1 allows"
	if err := results[2].Err; err == nil || err.Error() != want {
		t.Errorf("err = %v, want %q", err, want)
	}
}

func TestPolicyValidation(t *testing.T) {
	tests := []struct {
		policy fanout.Policy
		want   string // "" = valid
	}{
		{fanout.Policy{}, ""},
		{fanout.Policy{Parallel: 5, Batch: "25%", MaxFailures: "10%"}, ""},
		{fanout.Policy{Batch: "1", MaxFailures: "0"}, ""},
		{fanout.Policy{Parallel: -1}, "parallel=-1: must be 0"},
		{fanout.Policy{Batch: "0"}, "batch=0: a batch of 0 hosts never runs anything"},
		{fanout.Policy{Batch: "0%"}, "batch=0%: a batch of 0% never runs anything"},
		{fanout.Policy{Batch: "150%"}, "batch=150%: a share of the hosts cannot exceed 100%"},
		{fanout.Policy{Batch: "-2"}, "batch=-2: must not be negative"},
		{fanout.Policy{Batch: "a quarter"}, "batch=a quarter: not a whole number or percentage; write a number of hosts (batch=3) or a share of them (batch=25%)"},
		{fanout.Policy{Batch: "12.5%"}, "batch=12.5%: not a whole number"},
		{fanout.Policy{MaxFailures: "1x"}, "max_failures=1x: not a whole number or percentage; write a number of hosts (max_failures=1)"},
		{fanout.Policy{MaxFailures: "101%"}, "max_failures=101%: a share of the hosts cannot exceed 100%"},
		{fanout.Policy{MaxFailures: "+1"}, "max_failures=+1: not a whole number"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%+v", tt.policy), func(t *testing.T) {
			err := tt.policy.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("err = %v, want prefix %q", err, tt.want)
			}
			// Run refuses the policy without calling fn.
			called := false
			results := fanout.Run(context.Background(), hosts(2), tt.policy, func(context.Context, runbook.Host) error { called = true; return nil })
			if called || results[0].Started || !errors.Is(results[0].Err, fanout.ErrNotStarted) || !strings.Contains(results[0].Err.Error(), tt.want) {
				t.Errorf("Run with invalid policy: called=%v results=%+v", called, results)
			}
		})
	}
}

func TestCancelStopsScheduling(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var started atomic.Int32
	results := fanout.Run(ctx, hosts(6), fanout.Policy{Batch: "2", MaxFailures: "100%"}, func(ctx context.Context, h runbook.Host) error {
		if started.Add(1) == 2 {
			cancel()
		}
		<-ctx.Done()
		return ctx.Err()
	})
	if got := summary(results); got != "h01:fail/b1 h02:fail/b1 h03:skip h04:skip h05:skip h06:skip" {
		t.Errorf("got %s", got)
	}
	if err := results[3].Err; err == nil || !strings.Contains(err.Error(), "cancelled") {
		t.Errorf("not-started err = %v, want cancelled", err)
	}
}

func TestPanicFailsOneHost(t *testing.T) {
	results := fanout.Run(context.Background(), hosts(3), fanout.Policy{MaxFailures: "1"}, func(_ context.Context, h runbook.Host) error {
		if h.Name == "h02" {
			var m map[string]int
			m["x"] = 1
		}
		return nil
	})
	if got := summary(results); got != "h01:ok/b1 h02:fail/b1 h03:ok/b1" {
		t.Errorf("got %s", got)
	}
	if !strings.Contains(results[1].Err.Error(), "internal error on host h02") {
		t.Errorf("err = %v", results[1].Err)
	}
}

func TestFailedHostsRerun(t *testing.T) {
	all := hosts(5)
	rec := &recorder{fail: map[string]bool{"h02": true}}
	first := fanout.Run(context.Background(), all, fanout.Policy{Parallel: 1}, rec.run)
	retry := fanout.FailedHosts(first)
	names := func(hs []runbook.Host) []string {
		var out []string
		for _, h := range hs {
			out = append(out, h.Name)
		}
		return out
	}
	if got := names(retry); !slices.Equal(got, []string{"h02", "h03", "h04", "h05"}) {
		t.Fatalf("FailedHosts = %v, want the failed host and the ones never started", got)
	}
	delete(rec.fail, "h02") // fixed
	second := fanout.Run(context.Background(), retry, fanout.Policy{Parallel: 1}, rec.run)
	if len(fanout.FailedHosts(second)) != 0 {
		t.Errorf("re-run still failing: %s", summary(second))
	}
}

func TestBatches(t *testing.T) {
	var hosts []runbook.Host
	for i := range 5 {
		hosts = append(hosts, runbook.Host{Name: fmt.Sprintf("h%d", i+1)})
	}
	tests := []struct {
		batch, want string
	}{
		{"", "h1 h2 h3 h4 h5"},
		{"2", "h1 h2|h3 h4|h5"},
		{"50%", "h1 h2 h3|h4 h5"},
		{"1%", "h1|h2|h3|h4|h5"},
	}
	for _, tt := range tests {
		t.Run(tt.batch, func(t *testing.T) {
			bs, err := fanout.Policy{Batch: tt.batch}.Batches(hosts)
			if err != nil {
				t.Fatal(err)
			}
			var parts []string
			for _, b := range bs {
				var names []string
				for _, h := range b {
					names = append(names, h.Name)
				}
				parts = append(parts, strings.Join(names, " "))
			}
			if got := strings.Join(parts, "|"); got != tt.want {
				t.Fatalf("batches %q, want %q", got, tt.want)
			}
		})
	}
	if _, err := (fanout.Policy{Batch: "x"}).Batches(hosts); err == nil {
		t.Fatal("a malformed batch was accepted")
	}
}
