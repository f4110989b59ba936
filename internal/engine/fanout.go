package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/opsbook/opsbook/internal/executor"
	"github.com/opsbook/opsbook/internal/fanout"
	"github.com/opsbook/opsbook/internal/runbook"
)

// StepPolicy is the fan-out policy a step's attributes ask for. An unset
// parallel means one host at a time (docs/runbook-format.md), which
// fanout.Policy spells Parallel: 1 (its 0 means all at once).
func StepPolicy(step *runbook.Step) fanout.Policy {
	return fanout.Policy{Parallel: max(step.Parallel, 1), Batch: step.Batch, MaxFailures: step.MaxFailures}
}

// StepHosts resolves where a step of doc runs: nil for the local host, else
// the inventory hosts its target selects, in inventory order. A target that
// is not declared or selects no host is an error naming the selector and
// the environment — unless the step says no_hosts=skip, when no host is an
// empty, non-nil list (the step is skipped: see NoHostsText).
func (p *Plan) StepHosts(doc *runbook.Document, step *runbook.Step) ([]runbook.Host, error) {
	if step.Target == "" || step.Target == runbook.TargetLocal {
		return nil, nil
	}
	target := stepTarget(doc, step)
	if target == nil {
		return nil, fmt.Errorf("%s:%d:%d: step %s: target %q is not declared under targets: in the front matter",
			doc.Path, step.Pos.Line, step.Pos.Col, step.ID, step.Target)
	}
	var hosts []runbook.Host
	for _, h := range p.Hosts {
		if target.Matches(h) {
			hosts = append(hosts, h)
		}
	}
	if len(hosts) == 0 && step.SkipNoHosts {
		return []runbook.Host{}, nil
	}
	if len(hosts) == 0 {
		return nil, fmt.Errorf("%s:%d:%d: step %s: target %s (%s) selects no host of environment %s; add hosts with those tags to its inventory in opsbook.yaml, or run in another environment",
			doc.Path, step.Pos.Line, step.Pos.Col, step.ID, target.Name, selectorText(target.Selector), p.Environment)
	}
	return hosts, nil
}

// NoHostsText is why a step with no_hosts=skip is skipped when its target
// selects no host, for the log and the plan.
func (p *Plan) NoHostsText(doc *runbook.Document, step *runbook.Step) string {
	var sel map[string]string
	if t := stepTarget(doc, step); t != nil {
		sel = t.Selector
	}
	return fmt.Sprintf("target %s (%s) selects no host of environment %s, and the step says no_hosts=skip",
		step.Target, selectorText(sel), p.Environment)
}

// stepTarget is the target declared in doc's front matter that step runs
// on; nil when none is (the last of that name, as YAML would keep).
func stepTarget(doc *runbook.Document, step *runbook.Step) *runbook.Target {
	var target *runbook.Target
	for i := range doc.Front.Targets {
		if doc.Front.Targets[i].Name == step.Target {
			target = &doc.Front.Targets[i]
		}
	}
	return target
}

func selectorText(sel map[string]string) string {
	if len(sel) == 0 {
		return "every host"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(sel)) {
		parts = append(parts, k+"="+sel[k])
	}
	return strings.Join(parts, ", ")
}

// CheckTargets resolves every step target of the plan's documents (the
// runbook, its rollback, the runbooks it calls) and checks their fan-out
// policies, so that a target selecting no host is reported before the run
// starts rather than when its step comes.
func (p *Plan) CheckTargets() error {
	var errs []error
	for _, d := range p.documents() {
		for i := range d.Steps {
			s := &d.Steps[i]
			hosts, err := p.StepHosts(d, s)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if hosts == nil {
				continue
			}
			if err := StepPolicy(s).Validate(); err != nil {
				errs = append(errs, fmt.Errorf("%s:%d:%d: step %s: %w", d.Path, s.Pos.Line, s.Pos.Col, s.ID, err))
			}
		}
	}
	return errors.Join(errs...)
}

// RemoteSteps reports whether any step of the plan runs on inventory hosts.
func (p *Plan) RemoteSteps() bool {
	for _, d := range p.documents() {
		for _, s := range d.Steps {
			if s.Target != "" && s.Target != runbook.TargetLocal {
				return true
			}
		}
	}
	return false
}

// hostSet names the hosts an attempt of a fan-out step covers; nil means
// every host its target selects.
type hostSet map[string]bool

// unfinishedHosts are the hosts of a fan-out step that have not succeeded
// in the log (failed, interrupted or never started), for a re-run of only
// those. nil when the log has no fan-out record of the step.
func (r *runner) unfinishedHosts(phase string, step *runbook.Step) hostSet {
	r.appendMu.Lock()
	defer r.appendMu.Unlock()
	st := r.state.StepIn(phase, step.ID)
	if st == nil || !st.Fanout {
		return nil
	}
	set := hostSet{}
	for _, h := range st.Hosts {
		if h.Status != runbook.StepSucceeded {
			set[h.Host] = true
		}
	}
	return set
}

// isFanout reports whether the log shows the step spread over hosts.
func (r *runner) isFanout(phase string, step *runbook.Step) bool {
	r.appendMu.Lock()
	defer r.appendMu.Unlock()
	st := r.state.StepIn(phase, step.ID)
	return st != nil && st.Fanout
}

// fanOut runs one attempt of a step on its hosts through fanout.Run:
// step.parallel at a time, in rolling batches, stopping when more hosts
// fail than max_failures allows. Each host is connected inside its own
// turn, so an unreachable host is that host's failure. Every host's start,
// output, checks, outputs and end are recorded with the host's name; the
// step's own result is the host-less step.finished the caller records.
func (r *runner) fanOut(ctx context.Context, phase string, step *runbook.Step, attempt int, hosts []runbook.Host) attemptResult {
	wctx := context.WithoutCancel(ctx)
	policy := StepPolicy(step)
	res := attemptResult{attempt: attempt, exitCode: -1}
	batches, err := policy.Batches(hosts)
	if err != nil {
		res.detail = fmt.Sprintf("step %s: %v", step.ID, err)
		return res
	}
	batchOf := map[string]string{}
	for i, b := range batches {
		for _, h := range b {
			batchOf[h.Name] = strconv.Itoa(i + 1)
		}
	}
	names := make([]string, len(hosts))
	for i, h := range hosts {
		names[i] = h.Name
	}
	_, _, allowed, _ := policy.Limits(len(hosts))
	if err := r.append(wctx, r.stepEvent(runbook.EventStepStarted, phase, step, "", attempt,
		withData("hosts", strings.Join(names, ","), "parallel", strconv.Itoa(policy.Parallel),
			"batch", step.Batch, "max_failures", orZero(step.MaxFailures), "batches", strconv.Itoa(len(batches))))); err != nil {
		return attemptResult{err: err}
	}

	var recMu sync.Mutex
	var recErr error                            // recording failed: the run cannot go on
	published := map[string]map[string]string{} // unmasked outputs of this attempt's hosts
	recordErr := func(err error) error {
		recMu.Lock()
		defer recMu.Unlock()
		if recErr == nil {
			recErr = err
		}
		return err
	}
	start := time.Now()
	results := fanout.Run(ctx, hosts, policy, func(ctx context.Context, h runbook.Host) error {
		if err := r.append(wctx, r.stepEvent(runbook.EventStepStarted, phase, step, h.Name, attempt,
			withData("batch", batchOf[h.Name]))); err != nil {
			return recordErr(err)
		}
		x, err := r.e.cfg.Remote(ctx, h)
		if err != nil {
			detail := "could not connect: " + err.Error()
			if err := r.append(wctx, r.finishEvent(phase, step, attemptResult{host: h.Name, attempt: attempt, exitCode: -1, detail: detail}, "")); err != nil {
				return recordErr(err)
			}
			return errors.New(detail)
		}
		hres, outputs := r.attemptOn(ctx, phase, step, attempt, hostExecutor{x, h.Name}, true)
		if hres.err != nil {
			return recordErr(hres.err)
		}
		if !hres.ok {
			if err := r.append(wctx, r.finishEvent(phase, step, hres, "")); err != nil {
				return recordErr(err)
			}
			return errors.New(hres.detail)
		}
		recMu.Lock()
		published[h.Name] = outputs
		recMu.Unlock()
		if err := r.append(wctx, r.successEvents(phase, step, hres, outputs)...); err != nil {
			return recordErr(err)
		}
		return nil
	})
	res.duration = time.Since(start)
	if recErr != nil {
		return attemptResult{err: recErr}
	}

	var failed, notStarted []string
	for _, hr := range results {
		switch {
		case !hr.Started:
			notStarted = append(notStarted, hr.Host.Name)
		case hr.Err != nil:
			failed = append(failed, fmt.Sprintf("%s (%s)", hr.Host.Name, firstLine(hr.Err.Error())))
		}
	}
	if len(failed) > allowed || ctx.Err() != nil {
		var b strings.Builder
		fmt.Fprintf(&b, "%d of %d hosts failed", len(failed), len(hosts))
		if len(failed) > 0 {
			b.WriteString(": " + strings.Join(failed, ", "))
		}
		if len(notStarted) > 0 {
			fmt.Fprintf(&b, "; not started: %s", strings.Join(notStarted, ", "))
		}
		if ctx.Err() != nil {
			b.WriteString("; the run was cancelled")
		} else {
			fmt.Fprintf(&b, " — more than max_failures=%s allows", orZero(step.MaxFailures))
		}
		res.detail = b.String()
		return res
	}
	res.ok, res.exitCode = true, 0
	res.outputs = r.fanoutOutputs(phase, step, published)
	return res
}

// hostExecutor names an inventory host's executor by the host's name in
// the run log, whatever the executor calls itself.
type hostExecutor struct {
	executor.Executor
	name string
}

func (x hostExecutor) Host() string { return x.name }

// fanoutOutputs merges what the hosts of a fan-out step published, in
// inventory order: for a name several hosts publish, the last host's value
// is the one later steps see (each host's own value stays in the log).
// Values published by this attempt come unmasked from fresh; those of hosts
// that succeeded earlier come from the log.
func (r *runner) fanoutOutputs(phase string, step *runbook.Step, fresh map[string]map[string]string) map[string]string {
	r.appendMu.Lock()
	defer r.appendMu.Unlock()
	merged := map[string]string{}
	st := r.state.StepIn(phase, step.ID)
	if st == nil {
		return merged
	}
	order := map[string]int{}
	for i, h := range r.plan.Hosts {
		order[h.Name] = i
	}
	hosts := append([]*runbook.HostState(nil), st.Hosts...)
	sort.SliceStable(hosts, func(i, j int) bool { return order[hosts[i].Host] < order[hosts[j].Host] })
	for _, h := range hosts {
		if out, ok := fresh[h.Host]; ok {
			maps.Copy(merged, out)
		} else if h.Status == runbook.StepSucceeded {
			maps.Copy(merged, h.Outputs)
		}
	}
	return merged
}

func orZero(s string) string {
	if s == "" {
		return "0"
	}
	return s
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}
