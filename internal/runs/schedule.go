package runs

import (
	"context"
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

// ParseSchedule parses a 5-field cron expression in a time zone (IANA
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

// FireDueTriggers starts the runs that scheduled triggers owe at now. A
// fire more than FireGrace late was missed: it is reported (log and audit
// log) and, when the trigger says catch_up, run once; several missed fires
// never start more than one run. The claim on each fire time is atomic in
// the store, so several servers on one database fire it once.
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
		}
	}
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
	var due []time.Time
	for n := sched.Next(last); !n.IsZero() && !n.After(now) && len(due) < 10_000; n = sched.Next(n) {
		due = append(due, n)
	}
	if len(due) == 0 {
		return nil
	}
	latest := due[len(due)-1]
	onTime := now.Sub(latest) <= FireGrace
	missed := due
	if onTime {
		missed = due[:len(due)-1]
	}
	claimed, err := s.store.MarkTriggerFired(ctx, t.ID, latest)
	if err != nil || !claimed {
		return err
	}
	if len(missed) > 0 {
		s.log.Warn("scheduled trigger missed fires while the server was down", "trigger", t.Name,
			"missed", len(missed), "first", missed[0], "last", missed[len(missed)-1], "catch_up", t.CatchUp)
		if err := s.cfg.Audit(ctx, "system", "", "trigger.missed", "trigger/"+t.Name, map[string]string{
			"missed": strconv.Itoa(len(missed)), "first": missed[0].UTC().Format(time.RFC3339),
			"last": missed[len(missed)-1].UTC().Format(time.RFC3339), "catch_up": strconv.FormatBool(t.CatchUp)}); err != nil {
			return err
		}
	}
	if !onTime && !t.CatchUp {
		return nil
	}
	_, err = s.FireTrigger(ctx, t, nil, "", map[string]string{"fire": latest.UTC().Format(time.RFC3339), "late": strconv.FormatBool(!onTime)})
	return err
}

// FireTrigger starts a run of the trigger's runbook — always its published
// snapshot — as the trigger's service identity, whose permissions apply.
func (s *Service) FireTrigger(ctx context.Context, t store.Trigger, params map[string]string, remote string, detail map[string]string) (runbook.Run, error) {
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
	run, err := s.Start(ctx, p, StartRequest{Runbook: t.Runbook, Environment: t.Environment, Params: merged, Snapshot: "published"}, remote)
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
