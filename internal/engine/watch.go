package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/store"
)

// The watch after the operation. A runbook with guards and watch: 24h
// keeps its guards evaluated for that long after a run succeeds: the run
// stays succeeded, a breach is recorded on it (and so notified and shown in
// the postmortem), and on_breach: rollback becomes a question to the
// approvers, never a rollback on its own. The watch is a row in the store
// (store.Watch) so that any server node can carry it on; WatchRound is one
// pass over the watches that are due.

// watchedGuard is a guard of a watch and its last known state, kept in the
// watch row as JSON.
type watchedGuard struct {
	Guard    runbook.Guard `json:"guard"`
	Breached bool          `json:"breached"` // at the last check: a breach is recorded once, when it starts
	Failures int           `json:"failures"` // consecutive checks that could not be evaluated
}

// startWatch records the watch of a run that succeeded, if its runbook
// asks for one.
func (r *runner) startWatch(ctx context.Context) error {
	front := r.plan.Document.Front
	if front.Watch <= 0 || len(front.Guards) == 0 {
		return nil
	}
	now := time.Now()
	until := now.Add(front.Watch)
	var gs []watchedGuard
	var names []string
	interval := time.Duration(0)
	for _, g := range front.Guards {
		gs = append(gs, watchedGuard{Guard: g})
		names = append(names, g.Name)
		interval = minInterval(interval, g.Interval)
	}
	data, err := json.Marshal(gs)
	if err != nil {
		return err
	}
	if err := r.e.cfg.Store.AddWatch(ctx, store.Watch{RunID: r.run.ID, Until: until, NextAt: now.Add(interval),
		Prometheus: r.e.prometheusURL(r.plan), Guards: string(data)}); err != nil {
		return err
	}
	return r.append(ctx, runbook.Event{Type: runbook.EventWatchStarted, Text: fmt.Sprintf("watching %s for %s", strings.Join(names, ", "), front.Watch),
		Data: map[string]string{"until": until.UTC().Format(time.RFC3339), "guards": strings.Join(names, ",")}})
}

func minInterval(cur, d time.Duration) time.Duration {
	if d <= 0 {
		d = 30 * time.Second
	}
	if cur == 0 || d < cur {
		return d
	}
	return cur
}

// WatchLease is how long a node holds a watch it is checking.
const WatchLease = time.Minute

// WatchRound checks every watch that is due, as node: each guard once;
// a breach that starts is recorded on the run; a watch whose time is up is
// ended. It returns how many watches it checked.
func (e *Engine) WatchRound(ctx context.Context, node string) (int, error) {
	now := time.Now()
	ws, err := e.cfg.Store.ClaimWatches(ctx, node, now, WatchLease, 50)
	if err != nil {
		return 0, err
	}
	for _, w := range ws {
		if err := e.checkWatch(ctx, node, w, now); err != nil {
			return 0, err
		}
	}
	return len(ws), nil
}

func (e *Engine) checkWatch(ctx context.Context, node string, w store.Watch, now time.Time) error {
	var gs []watchedGuard
	if err := json.Unmarshal([]byte(w.Guards), &gs); err != nil {
		return fmt.Errorf("watch of run %s: guards: %w", w.RunID, err)
	}
	if !now.Before(w.Until) {
		return e.endWatch(ctx, w.RunID, "the watch ended")
	}
	base := w.Prometheus
	if e.cfg.PrometheusURL != "" {
		base = e.cfg.PrometheusURL
	}
	interval := time.Duration(0)
	var evs []runbook.Event
	for i := range gs {
		g := &gs[i]
		interval = minInterval(interval, g.Guard.Interval)
		var v float64
		var err error
		if base == "" {
			err = fmt.Errorf("no Prometheus URL is configured (prometheus: on the environment, or OPSBOOK_PROMETHEUS_URL)")
		} else {
			v, err = queryPrometheus(ctx, e.cfg.HTTPClient, base, g.Guard.Query)
		}
		if err != nil {
			g.Failures++
			// A guard that cannot be evaluated during the watch is itself
			// news: say so at once, then every tenth failure.
			if g.Failures == 1 || g.Failures%10 == 0 {
				evs = append(evs, runbook.Event{Type: runbook.EventAnomaly, Actor: "opsbook",
					Text: fmt.Sprintf("watch: guard %s cannot be evaluated: %v", g.Guard.Name, err)})
			}
			continue
		}
		g.Failures = 0
		now := breached(g.Guard, v)
		if now && !g.Breached {
			action := "notify"
			text := fmt.Sprintf("guard %s breached during the watch after the run: %s %s %s", g.Guard.Name,
				strconv.FormatFloat(v, 'g', -1, 64), g.Guard.Op, strconv.FormatFloat(g.Guard.Threshold, 'g', -1, 64))
			if g.Guard.OnBreach == "rollback" {
				// The operation succeeded and people may have built on it:
				// only they can decide that rolling back is still right.
				action = "ask-rollback"
				text += "; the runbook would roll back: decide whether to run its rollback document"
			}
			evs = append(evs, runbook.Event{Type: runbook.EventGuardBreached, Text: text, Data: map[string]string{
				"guard": g.Guard.Name, "value": strconv.FormatFloat(v, 'g', -1, 64),
				"threshold": g.Guard.Op + " " + strconv.FormatFloat(g.Guard.Threshold, 'g', -1, 64),
				"action":    action, "watch": "true"}})
		}
		g.Breached = now
	}
	if len(evs) > 0 {
		if _, err := e.cfg.Store.AppendEvents(ctx, w.RunID, evs...); err != nil {
			return fmt.Errorf("watch of run %s: %w", w.RunID, err)
		}
	}
	data, err := json.Marshal(gs)
	if err != nil {
		return err
	}
	w.Guards, w.NextAt = string(data), now.Add(interval)
	if w.NextAt.After(w.Until) {
		w.NextAt = w.Until
	}
	return e.cfg.Store.UpdateWatch(ctx, node, w)
}

// endWatch records the end of a run's watch and removes it.
func (e *Engine) endWatch(ctx context.Context, runID, how string) error {
	ended, err := e.cfg.Store.EndWatch(ctx, runID)
	if err != nil || !ended {
		return err
	}
	_, err = e.cfg.Store.AppendEvents(ctx, runID, runbook.Event{Type: runbook.EventWatchFinished, Text: how})
	return err
}
