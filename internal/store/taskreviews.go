package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/opsbook/opsbook/internal/lifecycle"
)

// TaskReview is a review of a planned operation's snapshot by a signed-in
// user of the server: verified, unlike a git-email record in the task's
// lifecycle.jsonl.
type TaskReview struct {
	Task     string `json:"task"`
	Snapshot string `json:"snapshot"`
	UserID   int64  `json:"-"`
	// Reviewer is the user's name.
	Reviewer string `json:"reviewer"`
	// Verdict is approve or request-changes.
	Verdict string    `json:"verdict"`
	Note    string    `json:"note,omitempty"`
	At      time.Time `json:"at"`
}

// TaskTick is the state of one pre-execution checklist item of a task as
// the server's users left it.
type TaskTick struct {
	Task   string `json:"task"`
	Item   string `json:"item"`
	Ticked bool   `json:"ticked"`
	// UserID is 0 when the server itself ticked the item (a notification
	// channel's ticks:).
	UserID int64 `json:"-"`
	// Actor is who ticked or unticked it: the user's name, or "opsbook".
	Actor string    `json:"actor"`
	Note  string    `json:"note,omitempty"`
	At    time.Time `json:"at"`
}

// PutTaskReview records r, replacing the same user's earlier review of the
// same task and snapshot: one review per user per task snapshot, however
// many requests race. It reports whether an earlier review was replaced.
func (s *Store) PutTaskReview(ctx context.Context, r TaskReview) (replaced bool, err error) {
	if r.Verdict != lifecycle.Approve && r.Verdict != lifecycle.RequestChanges {
		return false, fmt.Errorf("%w: verdict %q: want %s or %s", ErrInvalid, r.Verdict, lifecycle.Approve, lifecycle.RequestChanges)
	}
	if r.Task == "" || r.Snapshot == "" || r.UserID == 0 {
		return false, fmt.Errorf("%w: a task review needs a task, a snapshot and a user", ErrInvalid)
	}
	if r.At.IsZero() {
		r.At = time.Now()
	}
	// The primary key (task, user_id, snapshot) decides, so parallel
	// reviews by one user leave one row: insert if new, else replace.
	res, err := s.db.ExecContext(ctx, `INSERT INTO task_reviews (task, snapshot, user_id, verdict, note, created_at) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (task, user_id, snapshot) DO NOTHING`, r.Task, r.Snapshot, r.UserID, r.Verdict, r.Note, micros(r.At))
	if err != nil {
		return false, fmt.Errorf("review task %s: %w", r.Task, mapError(err))
	}
	if n, err := res.RowsAffected(); err == nil && n == 1 {
		return false, nil
	}
	_, err = s.db.ExecContext(ctx, `UPDATE task_reviews SET verdict = $4, note = $5, created_at = $6
		WHERE task = $1 AND snapshot = $2 AND user_id = $3`, r.Task, r.Snapshot, r.UserID, r.Verdict, r.Note, micros(r.At))
	if err != nil {
		return false, fmt.Errorf("review task %s: %w", r.Task, mapError(err))
	}
	return true, nil
}

// ListTaskReviews returns the task's reviews, oldest first.
func (s *Store) ListTaskReviews(ctx context.Context, task string) ([]TaskReview, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT r.task, r.snapshot, r.user_id, u.name, r.verdict, r.note, r.created_at
		FROM task_reviews r JOIN users u ON u.id = r.user_id WHERE r.task = $1 ORDER BY r.created_at, u.name`, task)
	if err != nil {
		return nil, fmt.Errorf("list reviews of task %s: %w", task, mapError(err))
	}
	defer rows.Close()
	out := []TaskReview{}
	for rows.Next() {
		var r TaskReview
		var at int64
		if err := rows.Scan(&r.Task, &r.Snapshot, &r.UserID, &r.Reviewer, &r.Verdict, &r.Note, &at); err != nil {
			return nil, fmt.Errorf("list reviews of task %s: %w", task, err)
		}
		r.At = fromMicros(at)
		out = append(out, r)
	}
	return out, mapError(rows.Err())
}

// SetTaskTick records the state of a checklist item of a task.
func (s *Store) SetTaskTick(ctx context.Context, t TaskTick) error {
	if t.Task == "" || t.Item == "" || t.Actor == "" {
		return fmt.Errorf("%w: a checklist tick needs a task, an item and an actor", ErrInvalid)
	}
	if t.At.IsZero() {
		t.At = time.Now()
	}
	user := sql.NullInt64{Int64: t.UserID, Valid: t.UserID != 0}
	_, err := s.db.ExecContext(ctx, `INSERT INTO task_ticks (task, item, ticked, user_id, actor, note, changed_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (task, item) DO UPDATE SET ticked = $3, user_id = $4, actor = $5, note = $6, changed_at = $7`,
		t.Task, t.Item, t.Ticked, user, t.Actor, t.Note, micros(t.At))
	if err != nil {
		return fmt.Errorf("tick %s of task %s: %w", t.Item, t.Task, mapError(err))
	}
	return nil
}

// ListTaskTicks returns the state of every checklist item of the task the
// server knows, oldest change first.
func (s *Store) ListTaskTicks(ctx context.Context, task string) ([]TaskTick, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT task, item, ticked, user_id, actor, note, changed_at
		FROM task_ticks WHERE task = $1 ORDER BY changed_at, item`, task)
	if err != nil {
		return nil, fmt.Errorf("list checklist ticks of task %s: %w", task, mapError(err))
	}
	defer rows.Close()
	out := []TaskTick{}
	for rows.Next() {
		var t TaskTick
		var user sql.NullInt64
		var at int64
		if err := rows.Scan(&t.Task, &t.Item, &t.Ticked, &user, &t.Actor, &t.Note, &at); err != nil {
			return nil, fmt.Errorf("list checklist ticks of task %s: %w", task, err)
		}
		t.UserID, t.At = user.Int64, fromMicros(at)
		out = append(out, t)
	}
	return out, mapError(rows.Err())
}

// VerifiedRecords returns the task's server reviews and checklist ticks
// as lifecycle records (Review, Check, Uncheck; Data["verified"] =
// "server"), oldest first: what gates.Options.Verified wants.
func (s *Store) VerifiedRecords(ctx context.Context, task string) ([]lifecycle.Record, error) {
	reviews, err := s.ListTaskReviews(ctx, task)
	if err != nil {
		return nil, err
	}
	ticks, err := s.ListTaskTicks(ctx, task)
	if err != nil {
		return nil, err
	}
	recs := make([]lifecycle.Record, 0, len(reviews)+len(ticks))
	verified := map[string]string{"verified": "server"}
	for _, r := range reviews {
		recs = append(recs, lifecycle.Record{Time: r.At, Type: lifecycle.Review, Actor: r.Reviewer, Snapshot: r.Snapshot,
			Verdict: r.Verdict, Note: r.Note, Data: verified})
	}
	for _, t := range ticks {
		typ := lifecycle.Check
		if !t.Ticked {
			typ = lifecycle.Uncheck
		}
		recs = append(recs, lifecycle.Record{Time: t.At, Type: typ, Actor: t.Actor, Item: t.Item, Note: t.Note, Data: verified})
	}
	return recs, nil
}
