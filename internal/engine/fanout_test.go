package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opsbook/opsbook/internal/executor"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/store"
)

// fakeHosts stands in for SSH in the engine's own tests: every inventory
// host is the local host under the host's name (OPSBOOK_HOST tells the
// commands apart), and a host marked dead cannot be connected. The
// sshexec pool is exercised against real sshd in the CLI's tests.
type fakeHosts struct {
	mu       sync.Mutex
	dead     map[string]bool
	connects map[string]int
	local    executor.Executor
}

func (f *fakeHosts) remote(ctx context.Context, h runbook.Host) (executor.Executor, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.connects[h.Name]++
	if f.dead[h.Name] {
		return nil, fmt.Errorf("dial %s:%d: connection refused", h.Address, h.Port)
	}
	return f.local, nil
}

func (f *fakeHosts) setDead(name string, dead bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dead[name] = dead
}

func newFanoutHarness(t *testing.T, dead ...string) (*harness, *fakeHosts) {
	h := newHarness(t)
	f := &fakeHosts{dead: map[string]bool{}, connects: map[string]int{},
		local: executor.NewLocal(executor.LocalOptions{Dir: h.dir})}
	t.Cleanup(func() { f.local.Close() })
	for _, d := range dead {
		f.dead[d] = true
	}
	h.eng = New(Config{Store: h.st, Remote: f.remote, PollInterval: 20 * time.Millisecond,
		FlushInterval: 20 * time.Millisecond, LeaseTTL: 3 * time.Second})
	return h, f
}

func webHosts() []runbook.Host {
	var hs []runbook.Host
	for i := 1; i <= 4; i++ {
		hs = append(hs, runbook.Host{Name: fmt.Sprintf("web%d", i), Address: "10.0.0." + fmt.Sprint(i), Tags: map[string]string{"role": "web"}})
	}
	return append(hs, runbook.Host{Name: "db1", Address: "10.0.1.1", Tags: map[string]string{"role": "db"}})
}

const webTarget = "targets:\n  web: {role: web}\n"

// deployStep logs each host's start and end in the workspace's file "log"
// and publishes the host's name as VERSION_FROM.
func deployStep(attrs string) string {
	return step("Deploy", "sh {id=deploy target=web outputs=VERSION_FROM "+attrs+"}",
		`echo "start $OPSBOOK_HOST" >> log; sleep 0.15; echo "end $OPSBOOK_HOST" >> log; echo "VERSION_FROM=$OPSBOOK_HOST" >> "$OPSBOOK_OUTPUT"`) +
		step("After", "sh {id=after}", `echo "after $VERSION_FROM" >> log`)
}

// maxConcurrent reads the log's start/end lines.
func maxConcurrent(log string) int {
	n, peak := 0, 0
	for _, l := range strings.Split(log, "\n") {
		switch {
		case strings.HasPrefix(l, "start "):
			n++
			peak = max(peak, n)
		case strings.HasPrefix(l, "end "):
			n--
		}
	}
	return peak
}

func hostStatuses(st *runbook.StepState) string {
	var out []string
	for _, h := range st.Hosts {
		s := string(h.Status)
		if h.NotStarted() {
			s = "not-started"
		}
		out = append(out, h.Host+"="+s)
	}
	return strings.Join(out, " ")
}

func TestFanOut(t *testing.T) {
	tests := []struct {
		name      string
		attrs     string
		dead      []string
		want      runbook.RunStatus
		hosts     string
		parallel  int
		errSubstr string
	}{
		{"rolling batches two at a time", "parallel=2 batch=50%", nil, runbook.RunSucceeded,
			"web1=succeeded web2=succeeded web3=succeeded web4=succeeded", 2, ""},
		{"unset parallel is one at a time", "", nil, runbook.RunSucceeded,
			"web1=succeeded web2=succeeded web3=succeeded web4=succeeded", 1, ""},
		{"a dead host stops the rollout by default", "", []string{"web2"}, runbook.RunFailed,
			"web1=succeeded web2=failed web3=not-started web4=not-started", 1, "1 of 4 hosts failed: web2 (could not connect: dial 10.0.0.2:0: connection refused); not started: web3, web4"},
		{"max_failures tolerates a dead host", "parallel=2 batch=50% max_failures=1", []string{"web3"}, runbook.RunSucceeded,
			"web1=succeeded web2=succeeded web3=failed web4=succeeded", 2, ""},
		{"in-flight hosts finish after the budget is spent", "parallel=2", []string{"web1"}, runbook.RunFailed,
			"web1=failed web2=succeeded web3=not-started web4=not-started", 1, "not started: web3, web4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, _ := newFanoutHarness(t, tt.dead...)
			p := h.plan(h.doc("rb.md", webTarget, deployStep(tt.attrs)), nil)
			p.Hosts = webHosts()
			status, s := h.run(p, StartOptions{}, ExecOptions{})
			st := s.Step("deploy")
			if status != tt.want || hostStatuses(st) != tt.hosts || !st.Fanout {
				t.Fatalf("status %s, hosts %s (fanout %v), error %q", status, hostStatuses(st), st.Fanout, st.Error)
			}
			log := h.read("log")
			if got := maxConcurrent(log); got != tt.parallel {
				t.Errorf("at most %d hosts ran at once, want %d:\n%s", got, tt.parallel, log)
			}
			if !strings.Contains(st.Error, tt.errSubstr) {
				t.Errorf("step error %q does not say %q", st.Error, tt.errSubstr)
			}
			if tt.want == runbook.RunSucceeded {
				// Outputs merge in inventory order: the last host wins.
				last := "web4"
				if st.Host("web4").Status != runbook.StepSucceeded {
					last = "web3"
				}
				if !strings.Contains(log, "after "+last+"\n") || s.Outputs["VERSION_FROM"] != last {
					t.Errorf("merged output: %v, log:\n%s", s.Outputs, log)
				}
				if got := st.Host("web1").Outputs["VERSION_FROM"]; got != "web1" {
					t.Errorf("web1's own output %q", got)
				}
			}
		})
	}
}

func TestFanOutRollingBatchesWaitForThePreviousBatch(t *testing.T) {
	h, _ := newFanoutHarness(t)
	p := h.plan(h.doc("rb.md", webTarget, step("Deploy", "sh {id=deploy target=web parallel=4 batch=2}",
		`echo "start $OPSBOOK_HOST" >> log; case $OPSBOOK_HOST in web1) sleep 0.4;; esac; echo "end $OPSBOOK_HOST" >> log`)), nil)
	p.Hosts = webHosts()
	status, s := h.run(p, StartOptions{}, ExecOptions{})
	if status != runbook.RunSucceeded {
		t.Fatalf("status %s: %s", status, s.Step("deploy").Error)
	}
	lines := strings.Split(strings.TrimSpace(h.read("log")), "\n")
	endWeb1 := -1
	for i, l := range lines {
		if l == "end web1" {
			endWeb1 = i
		}
		if (l == "start web3" || l == "start web4") && endWeb1 < 0 {
			t.Fatalf("batch 2 started before batch 1 finished:\n%s", h.read("log"))
		}
	}
	if got := s.Step("deploy").Host("web3").Batch; got != 2 {
		t.Errorf("web3 recorded in batch %d, want 2", got)
	}
}

func TestTargetWithoutHostsIsRefusedBeforeTheRun(t *testing.T) {
	h, _ := newFanoutHarness(t)
	p := h.plan(h.doc("rb.md", "targets:\n  cache: {role: cache, zone: a}\n",
		step("Flush", "sh {id=flush target=cache}", "true")), nil)
	p.Hosts = webHosts()
	_, err := h.eng.Start(context.Background(), p, StartOptions{})
	var te *TargetError
	if !errors.As(err, &te) || !strings.Contains(err.Error(), "target cache (role=cache, zone=a) selects no host of environment test") {
		t.Fatalf("Start: %v", err)
	}
	runs, _ := h.st.ListRuns(context.Background(), store.RunFilter{})
	if len(runs) != 0 {
		t.Fatalf("a run was recorded: %v", runs)
	}
}

// TestTargetWithoutHostsSkipsWithNoHostsSkip: no_hosts=skip turns "selects
// no host" from a refusal into a recorded skip of that step only (e.g. the
// replicas of a cluster that has none), with the reason in the log; a step
// of the same run whose target has hosts still runs on them, and a step
// without the attribute is still refused before the run.
func TestTargetWithoutHostsSkipsWithNoHostsSkip(t *testing.T) {
	h, _ := newFanoutHarness(t)
	doc := h.doc("rb.md", "targets:\n  web: {role: web}\n  replicas: {role: db, primary: \"false\"}\n",
		step("Rebuild replicas", "sh {id=rebuild target=replicas no_hosts=skip}", `echo "rebuilt $OPSBOOK_HOST" >> log`)+
			step("Deploy", "sh {id=deploy target=web}", `echo "deployed $OPSBOOK_HOST" >> log`))
	p := h.plan(doc, nil)
	p.Hosts = webHosts()
	status, s := h.run(p, StartOptions{}, ExecOptions{})
	if status != runbook.RunSucceeded {
		t.Fatalf("status %s", status)
	}
	st := s.Step("rebuild")
	if st == nil || st.Status != runbook.StepSkipped || !strings.Contains(st.SkipReason, "target replicas (primary=false, role=db) selects no host of environment test, and the step says no_hosts=skip") {
		t.Fatalf("rebuild: %+v", st)
	}
	if log := h.read("log"); strings.Contains(log, "rebuilt") || !strings.Contains(log, "deployed web1") {
		t.Fatalf("log:\n%s", log)
	}

	// The same step without the attribute: refused before anything runs.
	doc = h.doc("rb2.md", "targets:\n  replicas: {role: db, primary: \"false\"}\n",
		step("Rebuild replicas", "sh {id=rebuild target=replicas}", "true"))
	p = h.plan(doc, nil)
	p.Hosts = webHosts()
	var te *TargetError
	if _, err := h.eng.Start(context.Background(), p, StartOptions{}); !errors.As(err, &te) {
		t.Fatalf("Start without no_hosts=skip: %v", err)
	}
}

func TestFailedHostsAreRerunOnly(t *testing.T) {
	t.Run("resume --failed-only", func(t *testing.T) {
		h, f := newFanoutHarness(t, "web2")
		p := h.plan(h.doc("rb.md", webTarget, deployStep("")), nil)
		p.Hosts = webHosts()
		ctx := context.Background()
		status, s := h.run(p, StartOptions{}, ExecOptions{})
		if status != runbook.RunFailed {
			t.Fatalf("first run %s", status)
		}
		if _, err := h.eng.Resume(ctx, s.RunID, p, ExecOptions{}); err != nil {
			t.Fatalf("plain resume of a failed run: %v", err)
		}
		f.setDead("web2", false)
		status, err := h.eng.Resume(ctx, s.RunID, p, ExecOptions{FailedOnly: true})
		if err != nil || status != runbook.RunSucceeded {
			t.Fatalf("resume --failed-only: %s %v", status, err)
		}
		s, _ = h.eng.State(ctx, s.RunID)
		st := s.Step("deploy")
		if hostStatuses(st) != "web1=succeeded web2=succeeded web3=succeeded web4=succeeded" || st.Status != runbook.StepSucceeded {
			t.Fatalf("hosts %s step %s", hostStatuses(st), st.Status)
		}
		log := h.read("log")
		if strings.Count(log, "start web1") != 1 || !strings.Contains(log, "after web4") {
			t.Fatalf("web1 ran again or the run did not go on:\n%s", log)
		}
		if s.Step("deploy").Host("web1").Outputs["VERSION_FROM"] != "web1" || s.Outputs["VERSION_FROM"] != "web4" {
			t.Fatalf("outputs %v", s.Outputs)
		}
		if _, err := h.eng.Resume(ctx, s.RunID, p, ExecOptions{FailedOnly: true}); err == nil || !strings.Contains(err.Error(), "is succeeded") {
			t.Fatalf("--failed-only on a succeeded run: %v", err)
		}
	})
	t.Run("guided failure: retry failed hosts", func(t *testing.T) {
		h, f := newFanoutHarness(t, "web3")
		p := h.plan(h.doc("rb.md", webTarget, deployStep("parallel=2 on_fail=ask")), nil)
		p.Hosts = webHosts()
		d := &reviving{f: f, host: "web3"}
		status, s := h.run(p, StartOptions{}, ExecOptions{Decider: d})
		if status != runbook.RunSucceeded {
			t.Fatalf("status %s", status)
		}
		if !strings.Contains(strings.Join(d.options, ","), runbook.ChoiceRetryFailed) {
			t.Fatalf("options offered: %v", d.options)
		}
		log := h.read("log")
		for _, host := range []string{"web1", "web2"} {
			if strings.Count(log, "start "+host) != 1 {
				t.Fatalf("%s ran again:\n%s", host, log)
			}
		}
		if hostStatuses(s.Step("deploy")) != "web1=succeeded web2=succeeded web3=succeeded web4=succeeded" {
			t.Fatalf("hosts %s", hostStatuses(s.Step("deploy")))
		}
	})
}

// reviving answers retry-failed after bringing the dead host back.
type reviving struct {
	f       *fakeHosts
	host    string
	options []string
}

func (d *reviving) Decide(ctx context.Context, w runbook.Waiting, _ error) (runbook.DecisionRequest, error) {
	d.options = w.Options
	d.f.setDead(d.host, false)
	return runbook.DecisionRequest{Kind: w.Kind, Step: w.Step, Actor: "op", Choice: runbook.ChoiceRetryFailed, Reason: "host is back"}, nil
}

func TestInterruptedFanOutResumesUnfinishedHosts(t *testing.T) {
	h, _ := newFanoutHarness(t)
	p := h.plan(h.doc("rb.md", webTarget, deployStep("idempotent")), nil)
	p.Hosts = webHosts()
	ctx := context.Background()
	// The process died with web1 done and web2 running.
	run := h.died(p,
		runbook.Event{Type: runbook.EventStepStarted, Step: "deploy", Attempt: 1, Data: map[string]string{"hosts": "web1,web2,web3,web4"}},
		runbook.Event{Type: runbook.EventStepStarted, Step: "deploy", Host: "web1", Attempt: 1},
		runbook.Event{Type: runbook.EventStepPublished, Step: "deploy", Host: "web1", Attempt: 1, Data: map[string]string{"VERSION_FROM": "web1"}},
		runbook.Event{Type: runbook.EventStepFinished, Step: "deploy", Host: "web1", Attempt: 1, Data: map[string]string{"status": "succeeded"}},
		runbook.Event{Type: runbook.EventStepStarted, Step: "deploy", Host: "web2", Attempt: 1})
	mid, _ := h.eng.State(ctx, run.ID)
	if st := mid.Step("deploy"); st.Status != runbook.StepRunning {
		t.Fatalf("one host's success finished the whole step: %s", st.Status)
	}
	status, err := h.eng.Resume(ctx, run.ID, p, ExecOptions{})
	if err != nil || status != runbook.RunSucceeded {
		t.Fatalf("resume: %s %v", status, err)
	}
	if log := h.read("log"); strings.Contains(log, "start web1") || !strings.Contains(log, "start web2") {
		t.Fatalf("resumed hosts:\n%s", log)
	}
}
