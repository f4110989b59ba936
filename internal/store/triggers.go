package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/opsbook/opsbook/internal/runbook"
)

// Trigger kinds.
const (
	TriggerSchedule = "schedule"
	TriggerWebhook  = "webhook"
)

// Trigger starts runs of a runbook's published snapshot on a schedule or a
// signed webhook, acting as a service identity.
type Trigger struct {
	ID          int64             `json:"id"`
	Name        string            `json:"name"`
	Kind        string            `json:"kind"`
	Runbook     string            `json:"runbook"`
	Environment string            `json:"environment"`
	Params      map[string]string `json:"params,omitempty"`
	Schedule    string            `json:"schedule,omitempty"`
	Timezone    string            `json:"timezone,omitempty"`
	CatchUp     bool              `json:"catch_up"`
	Secret      string            `json:"-"` // webhook HMAC key, sealed
	// Format of a webhook's body: "" (opsbook's signed {"params":…}) or
	// "alertmanager" (Prometheus Alertmanager's webhook payload, with a
	// bearer token); Match and AlertParams apply to the latter.
	Format      string            `json:"format,omitempty"`
	Match       map[string]string `json:"match,omitempty"`        // alert labels that must be equal
	AlertParams map[string]string `json:"alert_params,omitempty"` // parameter → labels.NAME | annotations.NAME
	ServiceUser int64             `json:"service_user_id"`
	Enabled     bool              `json:"enabled"`
	LastFiredAt time.Time         `json:"last_fired_at,omitzero"`
	CreatedBy   string            `json:"created_by"`
	CreatedAt   time.Time         `json:"created_at"`
}

const triggerColumns = `id, name, kind, runbook, environment, params, schedule, timezone, catch_up, secret,
	service_user, enabled, last_fired_at, created_by, created_at, format, alert_match, alert_params`

// CreateTrigger stores a trigger and sets t.ID.
func (s *Store) CreateTrigger(ctx context.Context, t *Trigger) error {
	if t.CreatedAt.IsZero() {
		t.CreatedAt = time.Now()
	}
	t.CreatedAt = truncate(t.CreatedAt)
	params, err := encodeMap(t.Params)
	if err != nil {
		return fmt.Errorf("create trigger %s: %w", t.Name, err)
	}
	match, err := encodeMap(t.Match)
	if err != nil {
		return fmt.Errorf("create trigger %s: %w", t.Name, err)
	}
	alertParams, err := encodeMap(t.AlertParams)
	if err != nil {
		return fmt.Errorf("create trigger %s: %w", t.Name, err)
	}
	err = s.db.QueryRowContext(ctx, `INSERT INTO triggers (name, kind, runbook, environment, params, schedule, timezone,
		catch_up, secret, service_user, enabled, created_by, created_at, format, alert_match, alert_params)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) RETURNING id`,
		t.Name, t.Kind, t.Runbook, t.Environment, params, t.Schedule, t.Timezone, t.CatchUp, t.Secret,
		t.ServiceUser, t.Enabled, t.CreatedBy, micros(t.CreatedAt), t.Format, match, alertParams).Scan(&t.ID)
	if err != nil {
		return fmt.Errorf("create trigger %s: %w", t.Name, mapError(err))
	}
	return nil
}

// GetTrigger returns a trigger by name.
func (s *Store) GetTrigger(ctx context.Context, name string) (Trigger, error) {
	t, err := scanTrigger(s.db.QueryRowContext(ctx, `SELECT `+triggerColumns+` FROM triggers WHERE name = $1`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return Trigger{}, fmt.Errorf("trigger %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return Trigger{}, fmt.Errorf("get trigger %s: %w", name, mapError(err))
	}
	return t, nil
}

// ListTriggers returns every trigger by name.
func (s *Store) ListTriggers(ctx context.Context) ([]Trigger, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+triggerColumns+` FROM triggers ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list triggers: %w", mapError(err))
	}
	defer rows.Close()
	out := []Trigger{}
	for rows.Next() {
		t, err := scanTrigger(rows)
		if err != nil {
			return nil, fmt.Errorf("list triggers: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// DeleteTrigger removes a trigger.
func (s *Store) DeleteTrigger(ctx context.Context, name string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM triggers WHERE name = $1`, name)
	return checkAffected(res, err, "delete trigger "+name)
}

// MarkTriggerFired moves a trigger's last fire time from prev (as read
// with the trigger; zero: it never fired) to at, a later time. It reports
// whether this call moved it: of several servers that read the trigger at
// once, only one claims the ticks up to at (and reports those missed) —
// a server whose read is stale, because another moved the time meanwhile,
// claims nothing, even when its at is later.
func (s *Store) MarkTriggerFired(ctx context.Context, id int64, prev, at time.Time) (bool, error) {
	if !at.After(prev) {
		return false, nil
	}
	var res sql.Result
	var err error
	if prev.IsZero() {
		res, err = s.db.ExecContext(ctx, `UPDATE triggers SET last_fired_at = $2 WHERE id = $1 AND last_fired_at IS NULL`, id, micros(at))
	} else {
		res, err = s.db.ExecContext(ctx, `UPDATE triggers SET last_fired_at = $3 WHERE id = $1 AND last_fired_at = $2`, id, micros(prev), micros(at))
	}
	if err != nil {
		return false, fmt.Errorf("mark trigger %d fired: %w", id, mapError(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("mark trigger %d fired: %w", id, err)
	}
	return n == 1, nil
}

func scanTrigger(row rowScanner) (Trigger, error) {
	var t Trigger
	var params, match, alertParams string
	var fired sql.NullInt64
	var created int64
	err := row.Scan(&t.ID, &t.Name, &t.Kind, &t.Runbook, &t.Environment, &params, &t.Schedule, &t.Timezone, &t.CatchUp,
		&t.Secret, &t.ServiceUser, &t.Enabled, &fired, &t.CreatedBy, &created, &t.Format, &match, &alertParams)
	if err != nil {
		return Trigger{}, err
	}
	if fired.Valid {
		t.LastFiredAt = fromMicros(fired.Int64)
	}
	t.CreatedAt = fromMicros(created)
	if t.Params, err = decodeMap(params); err != nil {
		return Trigger{}, fmt.Errorf("trigger %s params: %w", t.Name, err)
	}
	if t.Match, err = decodeMap(match); err != nil {
		return Trigger{}, fmt.Errorf("trigger %s match: %w", t.Name, err)
	}
	if t.AlertParams, err = decodeMap(alertParams); err != nil {
		return Trigger{}, fmt.Errorf("trigger %s alert_params: %w", t.Name, err)
	}
	return t, nil
}

// FirstDelivery records a webhook delivery's signature (trigger and MAC in
// canonical form) until expires, and reports whether it is the first: a
// second delivery with the same MAC — a replay, after a restart or on
// another node — gets false. Deliveries past their expiry are forgotten
// here too, so the table holds one replay window's worth.
func (s *Store) FirstDelivery(ctx context.Context, trigger, mac string, expires, now time.Time) (bool, error) {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM webhook_deliveries WHERE expires_at < $1`, micros(now)); err != nil {
		return false, fmt.Errorf("forget old webhook deliveries: %w", mapError(err))
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO webhook_deliveries (trigger_name, mac, expires_at) VALUES ($1, $2, $3)`,
		trigger, mac, micros(expires))
	if errors.Is(mapError(err), ErrConflict) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("record webhook delivery for %s: %w", trigger, mapError(err))
	}
	return true, nil
}

// ClaimAlert records that a firing alert (trigger, fingerprint) is about
// to start a run, unless a run it started is still active: then it counts
// the repeat and returns that run's id with claimed false. An active row
// whose run has finished (or whose start never completed within a minute)
// is retired first, so the next firing starts a new run. Concurrent
// claimants on any node get one winner (the partial unique index).
func (s *Store) ClaimAlert(ctx context.Context, trigger, fingerprint string, now time.Time) (claimed bool, activeRun string, err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, "", fmt.Errorf("claim alert: %w", mapError(err))
	}
	defer tx.Rollback()
	var runID string
	var firedAt int64
	err = tx.QueryRowContext(ctx, `SELECT run_id, fired_at FROM alert_runs WHERE trigger_name = $1 AND fingerprint = $2 AND active = 1`,
		trigger, fingerprint).Scan(&runID, &firedAt)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return false, "", fmt.Errorf("claim alert: %w", mapError(err))
	default:
		live := runID == "" && now.Sub(fromMicros(firedAt)) < time.Minute
		if runID != "" {
			var status string
			serr := tx.QueryRowContext(ctx, `SELECT status FROM runs WHERE id = $1`, runID).Scan(&status)
			live = serr == nil && !runbook.RunStatus(status).Finished()
		}
		if live {
			if _, err := tx.ExecContext(ctx, `UPDATE alert_runs SET repeats = repeats + 1 WHERE trigger_name = $1 AND fingerprint = $2 AND active = 1`,
				trigger, fingerprint); err != nil {
				return false, "", fmt.Errorf("claim alert: %w", mapError(err))
			}
			return false, runID, mapError(tx.Commit())
		}
		if _, err := tx.ExecContext(ctx, `UPDATE alert_runs SET active = 0 WHERE trigger_name = $1 AND fingerprint = $2 AND active = 1`,
			trigger, fingerprint); err != nil {
			return false, "", fmt.Errorf("claim alert: %w", mapError(err))
		}
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO alert_runs (trigger_name, fingerprint, fired_at) VALUES ($1, $2, $3)
		ON CONFLICT DO NOTHING`, trigger, fingerprint, micros(now))
	if err != nil {
		return false, "", fmt.Errorf("claim alert: %w", mapError(err))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return false, "", mapError(tx.Commit()) // another node claimed it this instant
	}
	return true, "", mapError(tx.Commit())
}

// SetAlertRun names the run a claimed alert started; ReleaseAlert drops a
// claim whose run could not start, so the next notification tries again.
func (s *Store) SetAlertRun(ctx context.Context, trigger, fingerprint, runID string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE alert_runs SET run_id = $3 WHERE trigger_name = $1 AND fingerprint = $2 AND active = 1`,
		trigger, fingerprint, runID)
	if err != nil {
		return fmt.Errorf("record alert run: %w", mapError(err))
	}
	return nil
}

// ReleaseAlert drops an active claim that started no run.
func (s *Store) ReleaseAlert(ctx context.Context, trigger, fingerprint string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM alert_runs WHERE trigger_name = $1 AND fingerprint = $2 AND active = 1 AND run_id = ''`,
		trigger, fingerprint)
	if err != nil {
		return fmt.Errorf("release alert: %w", mapError(err))
	}
	return nil
}

// ResolveAlert records that a firing alert resolved and returns the run it
// had started ("" when none, or when already recorded). The row stays
// active until that run finishes: an alert that flaps while its run still
// works does not start a second one.
func (s *Store) ResolveAlert(ctx context.Context, trigger, fingerprint string, now time.Time) (string, error) {
	var runID string
	err := s.db.QueryRowContext(ctx, `UPDATE alert_runs SET resolved_at = $3
		WHERE trigger_name = $1 AND fingerprint = $2 AND active = 1 AND resolved_at IS NULL RETURNING run_id`,
		trigger, fingerprint, micros(now)).Scan(&runID)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("resolve alert: %w", mapError(err))
	}
	return runID, nil
}
