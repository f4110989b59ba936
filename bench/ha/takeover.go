package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/testbin/cluster"
)

type takeoverConfig struct {
	runs int
	ttl  time.Duration
	slow time.Duration
}

// benchRun is one run of the takeover scenario.
type benchRun struct {
	id, kind, tag string // kind: gate | slow | once (the runbook)
	owner         string // lease owner at the kill
	ready         bool   // at its gate or in its slow step
	finished      bool
	status        runbook.RunStatus
	asked         int // "interrupted: re-run?" answered
	gated         int // gate decisions given
}

// takeover is the first scenario: 3 nodes on one PostgreSQL, runs
// waiting at gates, in long idempotent steps and in long steps that are
// not idempotent, spread over the nodes; kill -9 of the node that owns
// the most of them. Nobody restarts anything; the harness only decides
// gates and answers "interrupted: re-run?" through a live node's API.
func takeover(dsn string, cfg takeoverConfig) error {
	ws, err := os.MkdirTemp("", "opsbook-bench-ha-ws-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(ws)
	ran, err := cluster.WriteWorkspace(ws, cfg.slow)
	if err != nil {
		return err
	}
	c, data, err := newCluster(dsn, ws, cfg.ttl)
	if err != nil {
		return err
	}
	defer os.RemoveAll(data)
	defer c.Stop()
	nodes, err := startNodes(c, 3, 64)
	if err != nil {
		return err
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return err
	}
	defer db.Close()

	kinds := []string{"gate", "slow", "once"}
	runs := make([]*benchRun, cfg.runs)
	for i := range runs {
		r := &benchRun{kind: kinds[i%3], tag: fmt.Sprintf("r%02d", i)}
		// Accepted round robin; executed by whichever node claims it.
		r.id, err = c.StartRun(nodes[i%3], "ops/runbooks/"+r.kind+".md", map[string]string{"TAG": r.tag})
		if err != nil {
			return err
		}
		runs[i] = r
	}
	started := time.Now()
	// Wait until every run is where the kill should find it.
	for {
		waiting := 0
		for _, r := range runs {
			if r.ready {
				continue
			}
			d, err := c.Run(nodes[0], r.id)
			if err != nil {
				return err
			}
			if r.kind == "gate" {
				r.ready = d.Waiting() != nil && d.Waiting().Kind == runbook.WaitKindGate
			} else if d.State != nil {
				for _, st := range d.State.Steps {
					r.ready = r.ready || st.ID == "slow" && st.Status == runbook.StepRunning
				}
			}
			if !r.ready {
				waiting++
			}
		}
		if waiting == 0 {
			break
		}
		if time.Since(started) > cfg.slow*2/3 {
			return fmt.Errorf("%d of %d runs not at their gate or in their slow step after %v: the slow steps would end before the kill (raise -slow)",
				waiting, len(runs), time.Since(started).Round(time.Millisecond))
		}
		time.Sleep(200 * time.Millisecond)
	}
	readyAfter := time.Since(started)

	// Who executes what: the run leases.
	owners, err := leaseOwners(db)
	if err != nil {
		return err
	}
	count := map[string]int{}
	for _, r := range runs {
		r.owner = owners[r.id]
		count[r.owner]++
	}
	victim := nodes[0]
	for _, n := range nodes {
		if count[n.Name] > count[victim.Name] {
			victim = n
		}
	}
	victim.Kill9()
	killed := time.Now()
	load := loadavg()
	var live []*cluster.Node
	for _, n := range nodes {
		if n != victim {
			live = append(live, n)
		}
	}

	// Decide gates and answer re-run questions on the live nodes until
	// every run has finished.
	deadline := killed.Add(2*cfg.ttl + 2*cfg.slow + 3*time.Minute)
	for i := 0; ; i++ {
		open := 0
		for j, r := range runs {
			if r.finished {
				continue
			}
			n := live[(i+j)%len(live)]
			d, err := c.Run(n, r.id)
			if err != nil {
				return err
			}
			if d.Status.Finished() {
				r.finished, r.status = true, d.Status
				continue
			}
			open++
			switch w := d.Waiting(); {
			case w == nil:
			case w.Kind == runbook.WaitKindGate:
				if _, err := c.Do(n, "POST", "/api/v1/runs/"+r.id+"/gate", map[string]string{"decision": "go", "reason": "bench: after the kill"}, nil); err == nil {
					r.gated++
				} else if !isConflict(err) {
					return err
				}
			case w.Kind == runbook.WaitKindAsk:
				if _, err := c.Do(n, "POST", "/api/v1/runs/"+r.id+"/answer", map[string]string{"kind": runbook.WaitKindAsk, "choice": runbook.ChoiceRetry, "reason": "bench: checked, safe"}, nil); err == nil {
					r.asked++
				} else if !isConflict(err) {
					return err
				}
			}
		}
		if open == 0 {
			break
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(os.Stderr, "%d runs still open at the deadline\n", open)
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	allDone := time.Since(killed)

	// The logs and the record of executions.
	counts, err := cluster.RanCounts(ran)
	if err != nil {
		return err
	}
	var (
		finished, succeeded, owned, gaps, noOutput, repeated, hidden, rerunIdem, asked int
		notTaken, foreign                                                              int
		takeovers                                                                      []time.Duration
		problems                                                                       []string
	)
	for _, r := range runs {
		if r.finished {
			finished++
		}
		if r.status == runbook.RunSucceeded {
			succeeded++
		}
		asked += r.asked
		evs, err := c.Events(live[0], r.id)
		if err != nil {
			return err
		}
		started := map[string]int{}
		doneAt := map[string]time.Time{} // first successful finish
		output := map[string]bool{}
		var resumed time.Time
		for i, ev := range evs {
			if ev.Seq != int64(i+1) {
				gaps++
				problems = append(problems, fmt.Sprintf("%s: event %d has seq %d", r.tag, i+1, ev.Seq))
				break
			}
		}
		for _, ev := range evs {
			switch ev.Type {
			case runbook.EventRunResumed:
				if resumed.IsZero() && ev.Time.After(killed) {
					resumed = ev.Time
				}
			case runbook.EventStepStarted:
				if !doneAt[ev.Step].IsZero() {
					repeated++
					problems = append(problems, fmt.Sprintf("%s: step %s started again after it succeeded", r.tag, ev.Step))
				}
				started[ev.Step]++
			case runbook.EventStepFinished:
				if ev.Data["status"] == string(runbook.StepSucceeded) && doneAt[ev.Step].IsZero() {
					doneAt[ev.Step] = ev.Time
				}
			case runbook.EventStepOutput:
				if strings.Contains(ev.Text, "ran "+r.tag+" "+ev.Step) {
					output[ev.Step] = true
				}
			}
		}
		for step, at := range doneAt {
			if step == "go" {
				continue // the gate: no command, no output
			}
			if !output[step] {
				noOutput++
				problems = append(problems, fmt.Sprintf("%s: step %s succeeded with no output in the log", r.tag, step))
			}
			n := counts[r.tag+" "+step]
			if n > started[step] {
				hidden++
				problems = append(problems, fmt.Sprintf("%s: step %s executed %d times, started %d times in the log", r.tag, step, n, started[step]))
			}
			if at.Before(killed) && n > 1 {
				repeated++
				problems = append(problems, fmt.Sprintf("%s: step %s completed before the kill and executed %d times", r.tag, step, n))
			}
		}
		if r.kind == "slow" && counts[r.tag+" slow"] > 1 {
			rerunIdem++
		}
		switch {
		case r.owner == victim.Name && resumed.IsZero():
			notTaken++
			problems = append(problems, fmt.Sprintf("%s: owned by the killed node, never resumed", r.tag))
		case r.owner == victim.Name:
			owned++
			takeovers = append(takeovers, resumed.Sub(killed))
		case !resumed.IsZero():
			foreign++
			problems = append(problems, fmt.Sprintf("%s: executing on live node %s, resumed anyway", r.tag, r.owner))
		}
	}
	byKind := map[string]int{}
	for _, r := range runs {
		if r.owner == victim.Name {
			byKind[r.kind]++
		}
	}
	p50, p99, max := quantiles(takeovers)
	over := 0
	for _, d := range takeovers {
		if d > 2*cfg.ttl {
			over++
		}
	}
	table(fmt.Sprintf("takeover: 3 nodes, %d runs, kill -9 of node %s (--lease-ttl %v, load average %s at the kill)", len(runs), victim.Name, cfg.ttl, load), [][2]string{
		{"runs finished", fmt.Sprintf("%d/%d (%d succeeded)", finished, len(runs), succeeded)},
		{"runs per lease owner at the kill", fmt.Sprint(count)},
		{"runs of the killed node", fmt.Sprintf("%d (at a gate %d, idempotent step %d, non-idempotent step %d)", byKind["gate"]+byKind["slow"]+byKind["once"], byKind["gate"], byKind["slow"], byKind["once"])},
		{"taken over (run.resumed after the kill)", fmt.Sprintf("%d, never: %d", owned, notTaken)},
		{"runs of live nodes resumed anyway", fmt.Sprint(foreign)},
		{"takeover time p50 / p99 / max", fmt.Sprintf("%v / %v / %v", p50, p99, max)},
		{"2× lease ttl; takeovers over it", fmt.Sprintf("%v; %d", 2*cfg.ttl, over)},
		{"lost events: runs with a seq gap", fmt.Sprint(gaps)},
		{"lost events: succeeded steps without their output", fmt.Sprint(noOutput)},
		{"completed steps repeated", fmt.Sprint(repeated)},
		{"executions not in the log", fmt.Sprint(hidden)},
		{"interrupted idempotent steps re-run", fmt.Sprint(rerunIdem)},
		{"\"interrupted: re-run?\" answered", fmt.Sprint(asked)},
		{"all runs in place (after the last start)", readyAfter.Round(time.Millisecond).String()},
		{"kill → last run finished", allDone.Round(time.Millisecond).String()},
	})
	for _, p := range problems {
		fmt.Println("problem:", p)
	}
	if finished < len(runs) {
		fmt.Fprint(os.Stderr, c.Logs())
		return errors.New("not every run finished")
	}
	return nil
}

// leaseOwners maps run ids to the owner of their lease.
func leaseOwners(db *sql.DB) (map[string]string, error) {
	rows, err := db.QueryContext(context.Background(), `SELECT run_id, owner FROM run_leases`)
	if err != nil {
		return nil, fmt.Errorf("read run leases: %w", err)
	}
	defer rows.Close()
	owners := map[string]string{}
	for rows.Next() {
		var id, owner string
		if err := rows.Scan(&id, &owner); err != nil {
			return nil, err
		}
		owners[id] = owner
	}
	return owners, rows.Err()
}

// isConflict reports an answer 409 or 400 (logged): the decision came
// too late (the run moved on) or was refused; the next round looks again.
func isConflict(err error) bool {
	var se *cluster.StatusError
	if errors.As(err, &se) {
		fmt.Fprintln(os.Stderr, "answer:", err)
		return se.Code == 409 || se.Code == 400
	}
	return false
}
