package runs

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	cron "github.com/netresearch/go-cron"

	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/store"
)

// FireGrace is how late a scheduled fire may be noticed and still count as
// on time; older due fires were missed (no server was up).
const FireGrace = time.Minute

// maxDueTicks bounds the ticks one pass walks through after an outage (a
// year of an `@every 30s` schedule is about a million).
const maxDueTicks = 2_000_000

// ParseSchedule parses a 5-field cron expression, or a descriptor
// (@hourly, @daily, @every 30s; at least a second), in a time zone (IANA
// name; empty means UTC).
func ParseSchedule(spec, tz string) (cron.Schedule, error) {
	if tz == "" {
		tz = "UTC"
	}
	if _, err := time.LoadLocation(tz); err != nil {
		return nil, fmt.Errorf("time zone %q: %w (use an IANA name such as Asia/Shanghai)", tz, err)
	}
	sched, err := cron.ParseStandard("CRON_TZ=" + tz + " " + spec)
	if err != nil {
		return nil, fmt.Errorf("schedule %q: %w (use 5 fields: minute hour day-of-month month day-of-week)", spec, err)
	}
	return sched, nil
}

// FireDueTriggers starts the runs that scheduled triggers owe at now,
// each tick exactly once however many nodes call it, at the same time or
// dying halfway: the run of a tick has the id store.RunIDFor(tick,
// "trigger/ID/TICK"), so only the first start of it creates a run, and the
// trigger's last fire time moves only after its run exists. A node that
// dies before starting the run leaves the tick due for the next pass of
// any node; one that dies after leaves a run that a live node queues (see
// Takeover).
//
// Every tick noticed within FireGrace is on time and starts its own run,
// however many one pass finds. A tick more than FireGrace late was missed
// (no node was up): it is reported (log and audit log) and, when the
// trigger says catch_up and no tick is on time, run once, late; without
// catch_up it is skipped. Several missed ticks never start more than one
// run.
func (s *Service) FireDueTriggers(ctx context.Context, now time.Time) {
	triggers, err := s.store.ListTriggers(ctx)
	if err != nil {
		s.log.Error("list triggers", "err", err)
		return
	}
	for _, t := range triggers {
		if t.Kind != store.TriggerSchedule || !t.Enabled {
			continue
		}
		if err := s.fireIfDue(ctx, t, now); err != nil {
			s.log.Error("scheduled trigger", "trigger", t.Name, "err", err)
			// An administrator reads the audit log, not the server's log.
			s.cfg.Audit(ctx, "system", "", "trigger.failed", "trigger/"+t.Name, map[string]string{"error": err.Error()})
		}
	}
}

// TickRunID is the id of the run a scheduled trigger's tick starts.
func TickRunID(triggerID int64, tick time.Time) string {
	return store.RunIDFor(tick, "trigger/"+strconv.FormatInt(triggerID, 10)+"/"+strconv.FormatInt(tick.Unix(), 10))
}

func (s *Service) fireIfDue(ctx context.Context, t store.Trigger, now time.Time) error {
	sched, err := ParseSchedule(t.Schedule, t.Timezone)
	if err != nil {
		return err
	}
	last := t.LastFiredAt
	if last.IsZero() {
		last = t.CreatedAt
	}
	// Every due tick noticed within FireGrace is on time and starts its own
	// run — also when one pass finds several (a schedule of seconds, a pass
	// that came late). Older ticks were missed (no node was up).
	var onTime []time.Time
	var missed int
	var firstMissed, lastMissed time.Time
	for n, i := sched.Next(last), 0; !n.IsZero() && !n.After(now) && i < maxDueTicks; n, i = sched.Next(n), i+1 {
		if now.Sub(n) <= FireGrace {
			onTime = append(onTime, n)
			continue
		}
		missed++
		if firstMissed.IsZero() {
			firstMissed = n
		}
		lastMissed = n
	}
	if len(onTime) == 0 && missed == 0 {
		return nil
	}
	fire, latest := onTime, lastMissed
	if len(onTime) > 0 {
		latest = onTime[len(onTime)-1]
	} else if t.CatchUp {
		fire = []time.Time{lastMissed} // once, late, for all the missed ticks
	}
	var fireErr error
	for _, tick := range fire {
		id := TickRunID(t.ID, tick)
		_, err := s.store.GetRun(ctx, id)
		switch {
		case errors.Is(err, store.ErrNotFound):
			_, err = s.fireTrigger(ctx, t, nil, "", map[string]string{"fire": tick.UTC().Format(time.RFC3339), "late": strconv.FormatBool(now.Sub(tick) > FireGrace)}, id)
			if err != nil && !errors.Is(err, store.ErrConflict) && fireErr == nil { // ErrConflict: another node fired it first
				fireErr = err
			}
		case err != nil:
			return err // the store is unreachable: the tick stays due
		}
	}
	// The tick is done with: fired here or elsewhere, or refused (a
	// refusal, such as an unpublished runbook, is reported once).
	// Only one node claims the ticks up to latest: the one whose read of
	// the trigger is still current. It alone reports the missed ones, as
	// it judged them; a node with a stale read (another claimed meanwhile)
	// reports nothing — its fires stand, their ids are per tick.
	claimed, err := s.store.MarkTriggerFired(ctx, t.ID, t.LastFiredAt, latest)
	if err != nil {
		return err
	}
	if !claimed || missed == 0 {
		return fireErr
	}
	s.log.Warn("scheduled trigger missed fires while no server was up", "trigger", t.Name,
		"missed", missed, "first", firstMissed, "last", lastMissed, "catch_up", t.CatchUp)
	if err := s.cfg.Audit(ctx, "system", "", "trigger.missed", "trigger/"+t.Name, map[string]string{
		"missed": strconv.Itoa(missed), "first": firstMissed.UTC().Format(time.RFC3339),
		"last": lastMissed.UTC().Format(time.RFC3339), "catch_up": strconv.FormatBool(t.CatchUp)}); err != nil {
		return err
	}
	return fireErr
}

// FireTrigger starts a run of the trigger's runbook — always its published
// snapshot — as the trigger's service identity, whose permissions apply.
func (s *Service) FireTrigger(ctx context.Context, t store.Trigger, params map[string]string, remote string, detail map[string]string) (runbook.Run, error) {
	return s.fireTrigger(ctx, t, params, remote, detail, "")
}

func (s *Service) fireTrigger(ctx context.Context, t store.Trigger, params map[string]string, remote string, detail map[string]string, id string) (runbook.Run, error) {
	p, err := s.store.Principal(ctx, t.ServiceUser, auth.ViaWebhook)
	if err != nil {
		return runbook.Run{}, fmt.Errorf("trigger %s: its service identity: %w", t.Name, err)
	}
	if t.Kind == store.TriggerSchedule {
		p.Via = auth.ViaSystem
	}
	scope := auth.Scope{Project: s.catalog.ProjectOf(t.Runbook), Environment: t.Environment}
	if !p.Can(auth.RunbookRun, scope) {
		return runbook.Run{}, fmt.Errorf("%w: trigger %s acts as %s, who may not run %s in %s", auth.ErrForbidden, t.Name, p.Name, t.Runbook, t.Environment)
	}
	merged := map[string]string{}
	for k, v := range t.Params {
		merged[k] = v
	}
	for k, v := range params {
		merged[k] = v
	}
	run, err := s.start(ctx, p, StartRequest{Runbook: t.Runbook, Environment: t.Environment, Params: merged, Snapshot: "published"}, remote, id)
	if err != nil {
		return runbook.Run{}, err
	}
	d := map[string]string{"run": run.ID, "kind": t.Kind}
	for k, v := range detail {
		d[k] = v
	}
	if err := s.cfg.Audit(ctx, p.Name, remote, "trigger.fire", "trigger/"+t.Name, d); err != nil {
		return run, err
	}
	return run, nil
}

// RunScheduler checks scheduled triggers every interval until ctx ends.
func (s *Service) RunScheduler(ctx context.Context, interval time.Duration) {
	s.FireDueTriggers(ctx, s.now())
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			s.FireDueTriggers(ctx, s.now())
		}
	}
}
