package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/opsbook/opsbook/internal/runbook"
)

// Notice is something people are told about: a notable run event (RunID
// and Seq set) or a task's lifecycle news (Task and Detail set). Each exists
// once per Dedupe key, however many nodes or processes noticed it.
type Notice struct {
	ID        int64
	Dedupe    string
	Kind      string // the event type, or task.* (see notify)
	RunID     string
	Seq       int64
	Task      string
	Detail    map[string]string
	CreatedAt time.Time
}

// Delivery states.
const (
	DeliveryPending = "pending"
	DeliverySent    = "sent"
	DeliveryFailed  = "failed" // given up after the last attempt
)

// Delivery is one notice sent (or to be sent) to one channel.
type Delivery struct {
	ID        int64     `json:"id"`
	NoticeID  int64     `json:"notice_id"`
	Channel   string    `json:"channel"`
	Status    string    `json:"status"`
	Attempts  int       `json:"attempts"`
	NextAt    time.Time `json:"next_at"`
	LastError string    `json:"last_error,omitempty"`
	SentAt    time.Time `json:"sent_at,omitzero"`
	Notice    Notice    `json:"-"`
}

// runNoticeDedupe names the notice of a run event.
func runNoticeDedupe(runID string, seq int64) string {
	return "run/" + runID + "/" + strconv.FormatInt(seq, 10)
}

const insertNoticeSQL = `INSERT INTO notices (dedupe, kind, run_id, seq, task, detail, created_at)
	VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (dedupe) DO NOTHING`

// AddNotice records a task notice unless one with the same Dedupe key
// exists; it reports whether it was new. Run events become notices by
// themselves, in AppendEvents' transaction.
func (s *Store) AddNotice(ctx context.Context, n Notice) (bool, error) {
	if n.Dedupe == "" || n.Kind == "" {
		return false, fmt.Errorf("add notice: %w: dedupe key and kind are required", ErrInvalid)
	}
	if n.CreatedAt.IsZero() {
		n.CreatedAt = time.Now()
	}
	detail, err := encodeMap(n.Detail)
	if err != nil {
		return false, fmt.Errorf("add notice %s: %w", n.Dedupe, err)
	}
	res, err := s.db.ExecContext(ctx, insertNoticeSQL, n.Dedupe, n.Kind, n.RunID, n.Seq, n.Task, detail, micros(n.CreatedAt))
	if err != nil {
		return false, fmt.Errorf("add notice %s: %w", n.Dedupe, mapError(err))
	}
	added, err := res.RowsAffected()
	return added > 0, err
}

// RouteNotices takes up to limit notices that have no deliveries yet, asks
// route which channels each goes to, and creates those deliveries (due now)
// in the same transaction that marks the notice routed: a notice is routed
// once, by one node, and a crash before the commit leaves it unrouted. It
// returns how many notices it routed.
func (s *Store) RouteNotices(ctx context.Context, limit int, route func(Notice) []string) (int, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("route notices: %w", mapError(err))
	}
	defer tx.Rollback()
	q := `SELECT id, dedupe, kind, run_id, seq, task, detail, created_at FROM notices WHERE routed = 0 ORDER BY id LIMIT $1`
	if s.dialect == DialectPostgres {
		q += ` FOR UPDATE SKIP LOCKED` // another node routes the others
	}
	rows, err := tx.QueryContext(ctx, q, limit)
	if err != nil {
		return 0, fmt.Errorf("route notices: %w", mapError(err))
	}
	var notices []Notice
	for rows.Next() {
		n, err := scanNotice(rows)
		if err != nil {
			rows.Close()
			return 0, fmt.Errorf("route notices: %w", err)
		}
		notices = append(notices, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("route notices: %w", mapError(err))
	}
	now := micros(time.Now())
	for _, n := range notices {
		for _, ch := range route(n) {
			if _, err := tx.ExecContext(ctx, `INSERT INTO deliveries (notice_id, channel, status, next_at)
				VALUES ($1, $2, 'pending', $3) ON CONFLICT (notice_id, channel) DO NOTHING`, n.ID, ch, now); err != nil {
				return 0, fmt.Errorf("route notice %s to %s: %w", n.Dedupe, ch, mapError(err))
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE notices SET routed = 1 WHERE id = $1`, n.ID); err != nil {
			return 0, fmt.Errorf("route notice %s: %w", n.Dedupe, mapError(err))
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("route notices: commit: %w", mapError(err))
	}
	return len(notices), nil
}

func scanNotice(r rowScanner) (Notice, error) {
	var n Notice
	var detail string
	var at int64
	if err := r.Scan(&n.ID, &n.Dedupe, &n.Kind, &n.RunID, &n.Seq, &n.Task, &detail, &at); err != nil {
		return n, err
	}
	n.CreatedAt = fromMicros(at)
	var err error
	n.Detail, err = decodeMap(detail)
	return n, err
}

// ClaimDeliveries leases up to limit due, pending deliveries to owner until
// now+lease and returns them with their notices. A delivery is sent by one
// claimant at a time; if the claimant dies, the lease runs out and another
// node takes it.
func (s *Store) ClaimDeliveries(ctx context.Context, owner string, lease time.Duration, limit int) ([]Delivery, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("claim deliveries: %w", mapError(err))
	}
	defer tx.Rollback()
	now := time.Now()
	q := `SELECT d.id FROM deliveries d WHERE d.status = 'pending' AND d.next_at <= $1 AND d.claimed_until < $1
		ORDER BY d.next_at, d.id LIMIT $2`
	if s.dialect == DialectPostgres {
		q += ` FOR UPDATE SKIP LOCKED`
	}
	rows, err := tx.QueryContext(ctx, q, micros(now), limit)
	if err != nil {
		return nil, fmt.Errorf("claim deliveries: %w", mapError(err))
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, fmt.Errorf("claim deliveries: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("claim deliveries: %w", mapError(err))
	}
	out := make([]Delivery, 0, len(ids))
	for _, id := range ids {
		row := tx.QueryRowContext(ctx, `UPDATE deliveries SET claimed_by = $2, claimed_until = $3 WHERE id = $1
			RETURNING id, notice_id, channel, status, attempts, next_at, last_error`, id, owner, micros(now.Add(lease)))
		var d Delivery
		var next int64
		if err := row.Scan(&d.ID, &d.NoticeID, &d.Channel, &d.Status, &d.Attempts, &next, &d.LastError); err != nil {
			return nil, fmt.Errorf("claim delivery %d: %w", id, mapError(err))
		}
		d.NextAt = fromMicros(next)
		d.Notice, err = scanNotice(tx.QueryRowContext(ctx, `SELECT id, dedupe, kind, run_id, seq, task, detail, created_at
			FROM notices WHERE id = $1`, d.NoticeID))
		if err != nil {
			return nil, fmt.Errorf("claim delivery %d: notice: %w", id, mapError(err))
		}
		out = append(out, d)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("claim deliveries: commit: %w", mapError(err))
	}
	return out, nil
}

// ErrLeaseLost is returned when a delivery's outcome is reported by a
// claimant whose lease another node has since taken over.
var ErrLeaseLost = errors.New("delivery lease lost")

// FinishDelivery records an attempt's outcome for the claimant owner: sent
// (sendErr nil), retried at retryAt, or given up (retryAt zero). The error
// text must already be masked.
func (s *Store) FinishDelivery(ctx context.Context, id int64, owner string, sendErr error, retryAt time.Time) error {
	status, errText := DeliverySent, ""
	var sentAt sql.NullInt64
	next := micros(time.Now())
	switch {
	case sendErr == nil:
		sentAt = nullMicros(time.Now())
	case retryAt.IsZero():
		status, errText = DeliveryFailed, sendErr.Error()
	default:
		status, errText, next = DeliveryPending, sendErr.Error(), micros(retryAt)
	}
	res, err := s.db.ExecContext(ctx, `UPDATE deliveries SET status = $3, attempts = attempts + 1, next_at = $4,
		last_error = $5, sent_at = $6, claimed_by = '', claimed_until = 0 WHERE id = $1 AND claimed_by = $2`,
		id, owner, status, next, errText, sentAt)
	if err != nil {
		return fmt.Errorf("finish delivery %d: %w", id, mapError(err))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("finish delivery %d: %w", id, ErrLeaseLost)
	}
	return nil
}

// Deliveries lists the deliveries of a run's notices (RunID) or of a
// task's (Task), oldest first, with their notices.
func (s *Store) Deliveries(ctx context.Context, runID, task string) ([]Delivery, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT d.id, d.notice_id, d.channel, d.status, d.attempts, d.next_at, d.last_error,
		d.sent_at, n.id, n.dedupe, n.kind, n.run_id, n.seq, n.task, n.detail, n.created_at
		FROM deliveries d JOIN notices n ON n.id = d.notice_id
		WHERE ($1 <> '' AND n.run_id = $1) OR ($2 <> '' AND n.task = $2) ORDER BY d.id`, runID, task)
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", mapError(err))
	}
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		var d Delivery
		var next int64
		var sent sql.NullInt64
		var detail string
		var at int64
		n := &d.Notice
		if err := rows.Scan(&d.ID, &d.NoticeID, &d.Channel, &d.Status, &d.Attempts, &next, &d.LastError, &sent,
			&n.ID, &n.Dedupe, &n.Kind, &n.RunID, &n.Seq, &n.Task, &detail, &at); err != nil {
			return nil, fmt.Errorf("list deliveries: %w", err)
		}
		d.NextAt = fromMicros(next)
		if sent.Valid {
			d.SentAt = fromMicros(sent.Int64)
		}
		n.CreatedAt = fromMicros(at)
		if n.Detail, err = decodeMap(detail); err != nil {
			return nil, fmt.Errorf("list deliveries: %w", err)
		}
		out = append(out, d)
	}
	return out, mapError(rows.Err())
}

// noticeFor returns the notice a run event makes, if it is notable.
func noticeFor(ev runbook.Event) (Notice, bool) {
	if !ev.Type.Notable() {
		return Notice{}, false
	}
	return Notice{Dedupe: runNoticeDedupe(ev.RunID, ev.Seq), Kind: string(ev.Type), RunID: ev.RunID, Seq: ev.Seq,
		CreatedAt: ev.Time}, true
}

// NotificationsDue reports whether a notice waits to be routed or a
// delivery is due: a cheap read, so an idle dispatcher never takes the
// write lock.
func (s *Store) NotificationsDue(ctx context.Context) (bool, error) {
	var due bool
	now := micros(time.Now())
	err := s.db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM notices WHERE routed = 0)
		OR EXISTS (SELECT 1 FROM deliveries WHERE status = 'pending' AND next_at <= $1 AND claimed_until < $1)`, now).Scan(&due)
	if err != nil {
		return false, fmt.Errorf("check notifications: %w", mapError(err))
	}
	return due, nil
}
