package server

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	cron "github.com/netresearch/go-cron"

	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/store"
)

// Trigger timing.
const (
	// FireGrace is how late a scheduled fire may be noticed and still count
	// as on time; older due fires were missed (the server was down).
	FireGrace = time.Minute
	// WebhookWindow is how far a webhook's signed timestamp may be from now.
	WebhookWindow = 5 * time.Minute
	// SignatureHeader carries "t=<unix seconds>,v1=<hex HMAC-SHA256>" over
	// "<t>.<body>" with the trigger's secret.
	SignatureHeader = "X-Opsbook-Signature"
)

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
func (s *Server) FireDueTriggers(ctx context.Context, now time.Time) {
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

func (s *Server) fireIfDue(ctx context.Context, t store.Trigger, now time.Time) error {
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
		if err := s.Audit(ctx, "system", "", "trigger.missed", "trigger/"+t.Name, map[string]string{
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
func (s *Server) FireTrigger(ctx context.Context, t store.Trigger, params map[string]string, remote string, detail map[string]string) (runbook.Run, error) {
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
	run, err := s.StartRun(ctx, p, StartRequest{Runbook: t.Runbook, Environment: t.Environment, Params: merged, Snapshot: "published"}, remote)
	if err != nil {
		return runbook.Run{}, err
	}
	d := map[string]string{"run": run.ID, "kind": t.Kind}
	for k, v := range detail {
		d[k] = v
	}
	if err := s.Audit(ctx, p.Name, remote, "trigger.fire", "trigger/"+t.Name, d); err != nil {
		return run, err
	}
	return run, nil
}

// runScheduler checks scheduled triggers every interval until ctx ends.
func (s *Server) runScheduler(ctx context.Context, interval time.Duration) {
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

// TriggerSecretAAD binds a sealed webhook secret to its trigger.
func TriggerSecretAAD(name string) []byte { return []byte("trigger/" + name) }

// SignWebhook returns the signature header value for body at time t.
func SignWebhook(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}

// ErrBadSignature is a webhook whose signature does not check.
var ErrBadSignature = errors.New("webhook signature refused")

// VerifyWebhook checks a signature header against body with the trigger's
// (sealed) secret and the replay window, and records the delivery in the
// store: the MAC is compared and remembered in canonical form (decoded
// hex), so changing the letter case of the hex is the same signature,
// and a replay is refused after a restart and on every node.
func (s *Server) VerifyWebhook(ctx context.Context, t store.Trigger, header string, body []byte) error {
	var ts, sig string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	if ts == "" || sig == "" {
		return fmt.Errorf("%w: %s must be \"t=<unix seconds>,v1=<hex HMAC-SHA256 of t.body>\"", ErrBadSignature, SignatureHeader)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: t=%q is not unix seconds", ErrBadSignature, ts)
	}
	now := s.now()
	signedAt := time.Unix(sec, 0)
	if d := now.Sub(signedAt); d > WebhookWindow || d < -WebhookWindow {
		return fmt.Errorf("%w: timestamp is %s away from the server's clock (allowed: %s); sign each request when sending it", ErrBadSignature, d.Round(time.Second), WebhookWindow)
	}
	got, err := hex.DecodeString(sig)
	if err != nil {
		return fmt.Errorf("%w: v1 is not hex", ErrBadSignature)
	}
	secret, err := s.keys.Open(t.Secret, TriggerSecretAAD(t.Name))
	if err != nil {
		return fmt.Errorf("trigger %s: unseal secret: %w", t.Name, err)
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	want := mac.Sum(nil)
	if !hmac.Equal(want, got) {
		return fmt.Errorf("%w: HMAC does not match (wrong secret, or the body changed)", ErrBadSignature)
	}
	// Remembered until the timestamp leaves the window, after which the
	// check above refuses the request anyway.
	first, err := s.store.FirstDelivery(ctx, t.Name, hex.EncodeToString(want), signedAt.Add(WebhookWindow+time.Second), now)
	if err != nil {
		return err
	}
	if !first {
		return fmt.Errorf("%w: this signature was already used; sign each request afresh", ErrBadSignature)
	}
	return nil
}

// webhookStatus maps webhook errors: a bad signature is 401.
func webhookStatus(err error) *Error {
	if errors.Is(err, ErrBadSignature) {
		return &Error{http.StatusUnauthorized, "bad_signature", err.Error()}
	}
	return nil
}
