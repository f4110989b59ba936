package engine

import (
	"context"
	"encoding/json"
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
	base := r.e.cfg.PrometheusURL
	if base == "" {
		r.append(context.WithoutCancel(ctx), runbook.Event{Type: runbook.EventAnomaly, Actor: "opsbook",
			Text: "the runbook has guards but no Prometheus URL is configured (set OPSBOOK_PROMETHEUS_URL); guards are not checked"})
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
	wctx := context.WithoutCancel(ctx)
	action := b.guard.OnBreach
	if action == "" {
		action = "pause"
	}
	text := fmt.Sprintf("guard %s: %s is %g (threshold %s %g)", b.guard.Name, b.guard.Query, b.value, b.guard.Op, b.guard.Threshold)
	r.append(wctx, runbook.Event{Type: runbook.EventGuardBreached, Step: step.ID, Text: text, Data: map[string]string{
		"guard": b.guard.Name, "value": strconv.FormatFloat(b.value, 'g', -1, 64),
		"threshold": b.guard.Op + " " + strconv.FormatFloat(b.guard.Threshold, 'g', -1, 64), "action": action}})
	if phase != runbook.PhaseMain {
		return phaseResult{}, false // already rolling back
	}
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
