package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/opsbook/opsbook/internal/runbook"
)

// breach is a guard whose query crossed its threshold.
type breach struct {
	guard runbook.Guard
	value float64
}

// guardMonitor checks the runbook's guards every interval while the run
// executes and reports breaches on a channel.
type guardMonitor struct {
	ch     chan breach
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// breaches is nil-safe: a run without guards never receives.
func (g *guardMonitor) breaches() <-chan breach {
	if g == nil {
		return nil
	}
	return g.ch
}

func (g *guardMonitor) stop() {
	if g == nil {
		return
	}
	g.cancel()
	g.wg.Wait()
}

func (r *runner) startGuards(ctx context.Context) *guardMonitor {
	guards := r.plan.Document.Front.Guards
	if len(guards) == 0 {
		return nil
	}
	gctx, cancel := context.WithCancel(ctx)
	g := &guardMonitor{ch: make(chan breach, len(guards)), cancel: cancel}
	base := r.e.prometheusURL(r.plan)
	if base == "" {
		r.append(context.WithoutCancel(ctx), runbook.Event{Type: runbook.EventAnomaly, Actor: "opsbook",
			Text: "the runbook has guards but no Prometheus URL is configured (set prometheus: on environment " + r.plan.Environment + " in opsbook.yaml, or OPSBOOK_PROMETHEUS_URL); guards are not checked"})
		cancel()
		return nil
	}
	for _, gd := range guards {
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			interval := gd.Interval
			if interval <= 0 {
				interval = 30 * time.Second
			}
			t := time.NewTicker(interval)
			defer t.Stop()
			failures := 0
			for {
				v, err := queryPrometheus(gctx, r.e.cfg.HTTPClient, base, gd.Query)
				switch {
				case err != nil && gctx.Err() == nil:
					failures++
					if failures == 1 || failures%10 == 0 {
						r.append(context.WithoutCancel(gctx), runbook.Event{Type: runbook.EventAnomaly, Actor: "opsbook",
							Text: fmt.Sprintf("guard %s: %v", gd.Name, err)})
					}
				case err == nil && breached(gd, v):
					select {
					case g.ch <- breach{gd, v}:
					case <-gctx.Done():
					}
					return // one breach per guard and run: the operator or the rollback takes over
				}
				select {
				case <-gctx.Done():
					return
				case <-t.C:
				}
			}
		}()
	}
	return g
}

func breached(g runbook.Guard, v float64) bool {
	switch g.Op {
	case ">":
		return v > g.Threshold
	case ">=":
		return v >= g.Threshold
	case "<":
		return v < g.Threshold
	case "<=":
		return v <= g.Threshold
	case "==":
		return v == g.Threshold
	case "!=":
		return v != g.Threshold
	}
	return false
}

// queryPrometheus runs an instant query and returns its single value: the
// first sample of a vector or a scalar. An empty vector is an error (the
// guard cannot be judged).
func queryPrometheus(ctx context.Context, c *http.Client, base, query string) (float64, error) {
	u := strings.TrimSuffix(base, "/") + "/api/v1/query?query=" + url.QueryEscape(query)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, fmt.Errorf("query Prometheus: %w", err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, fmt.Errorf("query Prometheus at %s: %w", base, err)
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(nil, resp.Body, 4<<20)).Decode(&body); err != nil {
		return 0, fmt.Errorf("query Prometheus: HTTP %d, unreadable answer: %w", resp.StatusCode, err)
	}
	if body.Status != "success" {
		return 0, fmt.Errorf("query Prometheus: %s (HTTP %d)", body.Error, resp.StatusCode)
	}
	var sample []any
	switch body.Data.ResultType {
	case "scalar":
		if err := json.Unmarshal(body.Data.Result, &sample); err != nil {
			return 0, fmt.Errorf("query Prometheus: scalar: %w", err)
		}
	case "vector":
		var vec []struct {
			Value []any `json:"value"`
		}
		if err := json.Unmarshal(body.Data.Result, &vec); err != nil {
			return 0, fmt.Errorf("query Prometheus: vector: %w", err)
		}
		if len(vec) == 0 {
			return 0, fmt.Errorf("query %q returned no series; check the query in Prometheus", query)
		}
		sample = vec[0].Value
	default:
		return 0, fmt.Errorf("query Prometheus: result type %q; a guard needs a scalar or instant vector", body.Data.ResultType)
	}
	if len(sample) != 2 {
		return 0, fmt.Errorf("query Prometheus: malformed sample")
	}
	s, _ := sample[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("query Prometheus: value %q: %w", s, err)
	}
	return v, nil
}

// guardCheckpoint handles a breach reported since the last step.
func (r *runner) guardCheckpoint(ctx context.Context, phase string, step *runbook.Step) (phaseResult, bool) {
	if phase != runbook.PhaseMain {
		return phaseResult{}, false
	}
	select {
	case b := <-r.guards.breaches():
		return r.onBreach(ctx, phase, step, b)
	default:
		return phaseResult{}, false
	}
}

// onBreach records a breach and rolls back or asks the operator whether to
// continue, abort or roll back.
func (r *runner) onBreach(ctx context.Context, phase string, step *runbook.Step, b breach) (phaseResult, bool) {
	text, action := r.recordBreach(ctx, step, b)
	if phase != runbook.PhaseMain {
		return phaseResult{}, false // already rolling back
	}
	return r.actOnBreach(ctx, phase, text, action, b)
}

// recordBreach appends the guard.breached event and returns its text and
// the action the guard asks for.
func (r *runner) recordBreach(ctx context.Context, step *runbook.Step, b breach) (text, action string) {
	action = b.guard.OnBreach
	if action == "" {
		action = "pause"
	}
	text = fmt.Sprintf("guard %s: %s is %g (threshold %s %g)", b.guard.Name, b.guard.Query, b.value, b.guard.Op, b.guard.Threshold)
	r.append(context.WithoutCancel(ctx), runbook.Event{Type: runbook.EventGuardBreached, Step: step.ID, Text: text, Data: map[string]string{
		"guard": b.guard.Name, "value": strconv.FormatFloat(b.value, 'g', -1, 64),
		"threshold": b.guard.Op + " " + strconv.FormatFloat(b.guard.Threshold, 'g', -1, 64), "action": action}})
	return text, action
}

// actOnBreach rolls back (on_breach: rollback) or asks the operator.
func (r *runner) actOnBreach(ctx context.Context, phase, text, action string, b breach) (phaseResult, bool) {
	if action == "rollback" {
		return phaseResult{outcome: outcomeRollback, reason: text + " (on_breach=rollback)"}, true
	}
	options := []string{runbook.ChoiceContinue, runbook.ChoiceAbort}
	if r.plan.Rollback != nil {
		options = append(options, runbook.ChoiceRollback)
	}
	d, res, stop := r.await(ctx, waitSpec{kind: runbook.WaitKindAsk, phase: phase, step: &runbook.Step{},
		text: text + ". Continue, abort or roll back?", options: options, guard: b.guard.Name})
	if stop {
		return res, true
	}
	switch d.Choice {
	case runbook.ChoiceContinue:
		return phaseResult{}, false
	case runbook.ChoiceRollback:
		return phaseResult{outcome: outcomeRollback, reason: text + "; " + d.Actor + " chose to roll back"}, true
	}
	return phaseResult{outcome: outcomeFailed, reason: text + "; " + d.Actor + " chose to abort"}, true
}

// guardStop is the cause of a step context cancelled by a guard with
// on_breach: rollback.
type guardStop struct{ text string }

func (g *guardStop) Error() string { return "stopped: " + g.text + " (on_breach=rollback)" }

// stopText describes why ctx was cancelled, for the failed step's record.
func stopText(ctx context.Context) string {
	var g *guardStop
	if errors.As(context.Cause(ctx), &g) {
		return g.Error()
	}
	return "cancelled"
}

// runGuarded runs one step of the main phase while watching the guards:
// a breach is recorded the moment it is reported, with the step it
// happened during; on_breach: rollback cancels the step (its process
// group is killed) and rolls back; pause lets the step end and then asks
// the operator before anything else runs. Gate and manual steps, which
// wait for people, handle breaches in their wait; a call step's own steps
// are watched one by one.
func (r *runner) runGuarded(ctx context.Context, phase string, doc *runbook.Document, step *runbook.Step) phaseResult {
	if phase != runbook.PhaseMain || r.guards == nil || step.Gate != nil || step.Manual != nil || step.Call != nil {
		return r.runStep(ctx, phase, doc, step)
	}
	sctx, stopStep := context.WithCancelCause(ctx)
	defer stopStep(nil)
	type seen struct {
		b            breach
		text, action string
	}
	var pauses []seen
	var stopped *seen
	done := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			select {
			case <-done:
				return
			case b := <-r.guards.breaches():
				text, action := r.recordBreach(ctx, step, b)
				if action == "rollback" {
					if stopped == nil {
						stopped = &seen{b, text, action}
						stopStep(&guardStop{text: text})
					}
					continue
				}
				pauses = append(pauses, seen{b, text, action})
			}
		}
	}()
	res := r.runStep(sctx, phase, doc, step)
	close(done)
	<-watched
	if ctx.Err() != nil {
		return res // the run itself was cancelled
	}
	if stopped != nil {
		res, _ := r.actOnBreach(ctx, phase, stopped.text, stopped.action, stopped.b)
		return res
	}
	if res.outcome != outcomeDone {
		return res
	}
	for _, p := range pauses {
		if res, stop := r.actOnBreach(ctx, phase, p.text, p.action, p.b); stop {
			return res
		}
	}
	return res
}

// checkGuards evaluates every guard once before a run in a protected
// environment starts: a guard that cannot be evaluated there (no
// Prometheus URL, an HTTP error, no series) refuses the start, since the
// run would go on unwatched.
func (e *Engine) checkGuards(ctx context.Context, p *Plan) error {
	guards := p.Document.Front.Guards
	if len(guards) == 0 || !p.Protected {
		return nil
	}
	base := e.prometheusURL(p)
	if base == "" {
		return &GuardError{Err: fmt.Errorf("the runbook has %d guard(s) but environment %s has no Prometheus URL: set prometheus: on the environment in opsbook.yaml (or OPSBOOK_PROMETHEUS_URL); a protected environment does not run unwatched", len(guards), p.Environment)}
	}
	var errs []error
	for _, g := range guards {
		if _, err := queryPrometheus(ctx, e.cfg.HTTPClient, base, g.Query); err != nil {
			errs = append(errs, fmt.Errorf("guard %s cannot be evaluated: %w", g.Name, err))
		}
	}
	if len(errs) > 0 {
		return &GuardError{Err: fmt.Errorf("environment %s is protected and a run there does not start unwatched: %w", p.Environment, errors.Join(errs...))}
	}
	return nil
}

// GuardError is a run refused because its guards cannot be evaluated in a
// protected environment. Like a ParamsError it is found before anything
// runs.
type GuardError struct{ Err error }

func (e *GuardError) Error() string { return e.Err.Error() }
func (e *GuardError) Unwrap() error { return e.Err }

// prometheusURL is where the plan's guards are queried: the engine's
// configured URL ($OPSBOOK_PROMETHEUS_URL by default), which overrides the
// environment's prometheus: setting.
func (e *Engine) prometheusURL(p *Plan) string {
	if e.cfg.PrometheusURL != "" {
		return e.cfg.PrometheusURL
	}
	return p.PrometheusURL
}
