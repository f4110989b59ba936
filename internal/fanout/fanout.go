// Package fanout runs one action on many hosts: at most Parallel at once,
// in rolling batches (a batch starts only when the previous one finished),
// and stops scheduling new hosts once more than MaxFailures have failed.
//
// The engine calls it for a step whose target resolves to inventory hosts,
// with an sshexec.Pool to reach them:
//
//	if err := policy.Validate(); err != nil { ... } // report before running
//	results := fanout.Run(ctx, hosts, policy, func(ctx context.Context, h runbook.Host) error {
//		ex, err := pool.Get(ctx, h)
//		if err != nil {
//			return err
//		}
//		res, err := ex.Run(ctx, cmd)
//		if err != nil {
//			return err
//		}
//		if !res.Succeeded() {
//			return fmt.Errorf("exit status %d", res.ExitCode)
//		}
//		return nil
//	})
//	// results are in hosts' order, one per host; to retry only what did not
//	// succeed (failed or never started), run again with FailedHosts(results).
package fanout

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/opsbook/opsbook/internal/runbook"
)

// Policy says how to spread one step over its hosts.
type Policy struct {
	// Parallel is how many hosts run at once; 0 means all the hosts of the
	// batch.
	Parallel int
	// Batch is the rolling batch size, a count ("3") or a share of the
	// hosts ("25%", rounded up, at least one host). "" means one batch.
	Batch string
	// MaxFailures is how many failed hosts are tolerated, a count ("1") or
	// a share of the hosts ("10%", rounded down). One failure more stops
	// scheduling: running hosts finish, the rest are not started. ""
	// means "0": the first failure stops the rollout, the safe default for
	// operations.
	MaxFailures string
}

// ErrNotStarted is wrapped by the Err of a host that was never started:
// the failure budget was exhausted, the run was cancelled or the policy
// was invalid.
var ErrNotStarted = errors.New("not started")

// HostResult is what happened on one host.
type HostResult struct {
	Host     runbook.Host
	Err      error // nil: succeeded
	Started  bool
	Batch    int // 1-based rolling batch; 0 when not started
	Duration time.Duration
}

// Succeeded reports whether the host ran and succeeded.
func (r HostResult) Succeeded() bool { return r.Started && r.Err == nil }

// plan is a policy resolved for a number of hosts.
type plan struct {
	batch, parallel, maxFailures int
	maxFailuresText              string
}

// Validate reports a malformed policy in words an author can act on.
func (p Policy) Validate() error {
	_, err := p.resolve(100)
	return err
}

func (p Policy) resolve(n int) (plan, error) {
	if p.Parallel < 0 {
		return plan{}, fmt.Errorf("parallel=%d: must be 0 (all hosts at once) or a positive number of hosts", p.Parallel)
	}
	batch := n
	if p.Batch != "" {
		count, percent, err := parseAmount(p.Batch)
		if err != nil {
			return plan{}, fmt.Errorf("batch=%s: %v; write a number of hosts (batch=3) or a share of them (batch=25%%)", p.Batch, err)
		}
		if percent {
			if count == 0 {
				return plan{}, fmt.Errorf("batch=%s: a batch of 0%% never runs anything; use at least 1%%", p.Batch)
			}
			batch = (n*count + 99) / 100
		} else {
			if count == 0 {
				return plan{}, fmt.Errorf("batch=%s: a batch of 0 hosts never runs anything; use at least 1", p.Batch)
			}
			batch = count
		}
		batch = max(1, min(batch, n))
	}
	maxFailures := 0
	if p.MaxFailures != "" {
		count, percent, err := parseAmount(p.MaxFailures)
		if err != nil {
			return plan{}, fmt.Errorf("max_failures=%s: %v; write a number of hosts (max_failures=1) or a share of them (max_failures=10%%)", p.MaxFailures, err)
		}
		maxFailures = count
		if percent {
			maxFailures = n * count / 100
		}
	}
	parallel := batch
	if p.Parallel > 0 {
		parallel = min(p.Parallel, batch)
	}
	text := p.MaxFailures
	if text == "" {
		text = "0"
	}
	return plan{batch: batch, parallel: max(1, parallel), maxFailures: maxFailures, maxFailuresText: text}, nil
}

// Batches splits hosts into the rolling batches Run would use, for a plan
// shown before anything runs (opsbook run --dry-run).
func (p Policy) Batches(hosts []runbook.Host) ([][]runbook.Host, error) {
	if len(hosts) == 0 {
		return nil, nil
	}
	pl, err := p.resolve(len(hosts))
	if err != nil {
		return nil, err
	}
	var out [][]runbook.Host
	for i := 0; i < len(hosts); i += pl.batch {
		out = append(out, hosts[i:min(i+pl.batch, len(hosts))])
	}
	return out, nil
}

// Limits are a policy resolved for a number of hosts: at most Parallel at
// once, Batch per rolling batch, MaxFailures tolerated.
func (p Policy) Limits(n int) (parallel, batch, maxFailures int, err error) {
	pl, err := p.resolve(max(n, 1))
	return pl.parallel, pl.batch, pl.maxFailures, err
}

// parseAmount reads "N" or "P%" (P at most 100).
func parseAmount(s string) (n int, percent bool, err error) {
	digits, percent := strings.CutSuffix(s, "%")
	n, convErr := strconv.Atoi(digits)
	if convErr != nil || strings.HasPrefix(digits, "+") {
		return 0, false, errors.New("not a whole number or percentage")
	}
	if n < 0 {
		return 0, false, errors.New("must not be negative")
	}
	if percent && n > 100 {
		return 0, false, errors.New("a share of the hosts cannot exceed 100%")
	}
	return n, percent, nil
}

// Run calls fn once per host as the policy allows and returns one result
// per host, in the order of hosts. fn gets ctx; cancelling ctx stops
// scheduling and is up to fn to honour for running hosts. A panic in fn
// fails that host only.
func Run(ctx context.Context, hosts []runbook.Host, p Policy, fn func(context.Context, runbook.Host) error) []HostResult {
	results := make([]HostResult, len(hosts))
	for i, h := range hosts {
		results[i].Host = h
	}
	if len(hosts) == 0 {
		return results
	}
	pl, err := p.resolve(len(hosts))
	if err != nil {
		for i := range results {
			results[i].Err = fmt.Errorf("%w: %v", ErrNotStarted, err)
		}
		return results
	}

	var mu sync.Mutex // guards failures and stop
	failures := 0
	var stop error
	stopped := func() error {
		mu.Lock()
		defer mu.Unlock()
		if stop == nil && ctx.Err() != nil {
			stop = fmt.Errorf("%w: the run was cancelled", ErrNotStarted)
		}
		return stop
	}

	next := 0
	for batch := 1; next < len(hosts); batch++ {
		end := min(next+pl.batch, len(hosts))
		slots := make(chan struct{}, pl.parallel)
		var wg sync.WaitGroup
		for ; next < end; next++ {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
			}
			if stopped() != nil {
				break
			}
			i := next
			results[i].Started, results[i].Batch = true, batch
			wg.Go(func() {
				defer func() { <-slots }()
				start := time.Now()
				err := call(ctx, fn, hosts[i])
				results[i].Duration = time.Since(start)
				results[i].Err = err
				if err == nil {
					return
				}
				mu.Lock()
				defer mu.Unlock()
				failures++
				if failures > pl.maxFailures && stop == nil {
					stop = fmt.Errorf("%w: %d host(s) failed, more than max_failures=%s allows", ErrNotStarted, failures, pl.maxFailuresText)
				}
			})
		}
		wg.Wait()
		if err := stopped(); err != nil {
			for i := next; i < len(hosts); i++ {
				results[i].Err = err
			}
			break
		}
	}
	return results
}

func call(ctx context.Context, fn func(context.Context, runbook.Host) error, h runbook.Host) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("internal error on host %s: %v\n%s", h.Name, r, debug.Stack())
		}
	}()
	return fn(ctx, h)
}

// FailedHosts lists, in order, the hosts that did not succeed — failed or
// never started — for a re-run of only those.
func FailedHosts(results []HostResult) []runbook.Host {
	var hosts []runbook.Host
	for _, r := range results {
		if !r.Succeeded() {
			hosts = append(hosts, r.Host)
		}
	}
	return hosts
}
