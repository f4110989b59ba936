package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/opsbook/opsbook/internal/audit"
)

// AppendAudit seals e as the successor of the newest entry and stores it,
// in one transaction that also moves audit_head; concurrent appends are
// serialised by the lock on audit_head's row. It returns the stored entry.
func (s *Store) AppendAudit(ctx context.Context, e audit.Entry) (audit.Entry, error) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return audit.Entry{}, fmt.Errorf("append audit entry: %w", mapError(err))
	}
	defer tx.Rollback()
	lockHead := `SELECT seq, hash FROM audit_head WHERE id = 1`
	if s.dialect == DialectPostgres {
		lockHead += ` FOR UPDATE` // SQLite's writer lock (BEGIN IMMEDIATE) already serialises
	}
	var last *audit.Entry
	var head audit.Entry
	switch err := tx.QueryRowContext(ctx, lockHead).Scan(&head.Seq, &head.Hash); {
	case errors.Is(err, sql.ErrNoRows):
		// First entry. Two first appends racing on PostgreSQL both find no
		// head; the loser fails on audit_log's primary key and is retried by
		// the caller's next append.
	case err != nil:
		return audit.Entry{}, fmt.Errorf("append audit entry: read head: %w", mapError(err))
	default:
		last = &head
	}
	e = audit.Seal(last, e)
	detail, err := encodeMap(e.Detail)
	if err != nil {
		return audit.Entry{}, fmt.Errorf("append audit entry: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO audit_log (seq, at, actor, action, target, remote, detail, prev, hash)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		e.Seq, micros(e.Time), e.Actor, e.Action, e.Target, e.Remote, detail, e.Prev, e.Hash); err != nil {
		return audit.Entry{}, fmt.Errorf("append audit entry: %w", mapError(err))
	}
	if last == nil {
		_, err = tx.ExecContext(ctx, `INSERT INTO audit_head (id, seq, hash) VALUES (1, $1, $2)`, e.Seq, e.Hash)
	} else {
		_, err = tx.ExecContext(ctx, `UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1`, e.Seq, e.Hash)
	}
	if err != nil {
		return audit.Entry{}, fmt.Errorf("append audit entry: move head: %w", mapError(err))
	}
	if err := tx.Commit(); err != nil {
		return audit.Entry{}, fmt.Errorf("append audit entry: %w", mapError(err))
	}
	return e, nil
}

// AuditFilter selects audit entries. Zero fields do not filter.
type AuditFilter struct {
	Actor  string
	Action string // exact, or a prefix ending in "." ("run." matches run.start, run.cancel…)
	Target string
	Before int64 // cursor: only entries with a smaller seq
	Limit  int
}

// ListAudit returns entries newest first.
func (s *Store) ListAudit(ctx context.Context, f AuditFilter) ([]audit.Entry, error) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if f.Actor != "" {
		where = append(where, "actor = "+arg(f.Actor))
	}
	if f.Action != "" {
		if f.Action[len(f.Action)-1] == '.' {
			lo, hi, ok := prefixRange(f.Action)
			if !ok {
				return []audit.Entry{}, nil
			}
			where = append(where, "action >= "+arg(lo)+" AND action < "+arg(hi))
		} else {
			where = append(where, "action = "+arg(f.Action))
		}
	}
	if f.Target != "" {
		where = append(where, "target = "+arg(f.Target))
	}
	if f.Before > 0 {
		where = append(where, "seq < "+arg(f.Before))
	}
	limit := f.Limit
	if limit <= 0 || limit > MaxRunLimit {
		limit = DefaultRunLimit
	}
	q := `SELECT seq, at, actor, action, target, remote, detail, prev, hash FROM audit_log`
	for i, w := range where {
		if i == 0 {
			q += " WHERE " + w
		} else {
			q += " AND " + w
		}
	}
	q += " ORDER BY seq DESC LIMIT " + arg(limit)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list audit log: %w", mapError(err))
	}
	defer rows.Close()
	out := []audit.Entry{}
	for rows.Next() {
		e, err := scanAudit(rows)
		if err != nil {
			return nil, fmt.Errorf("list audit log: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// AuditReport is the outcome of VerifyAudit.
type AuditReport struct {
	Checked int64          `json:"checked"`
	Head    int64          `json:"head"` // seq of the newest entry as audit_head records it
	Problem *audit.Problem `json:"problem,omitempty"`
}

// VerifyAudit walks the whole log in seq order and checks the chain and
// the head. Rows are streamed, so the log's size does not matter.
func (s *Store) VerifyAudit(ctx context.Context) (AuditReport, error) {
	var head *audit.Entry
	var h audit.Entry
	switch err := s.db.QueryRowContext(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`).Scan(&h.Seq, &h.Hash); {
	case errors.Is(err, sql.ErrNoRows):
		head = &audit.Entry{} // nothing was ever written
	case err != nil:
		return AuditReport{}, fmt.Errorf("verify audit log: read head: %w", mapError(err))
	default:
		head = &h
	}
	rows, err := s.db.QueryContext(ctx, `SELECT seq, at, actor, action, target, remote, detail, prev, hash FROM audit_log ORDER BY seq`)
	if err != nil {
		return AuditReport{}, fmt.Errorf("verify audit log: %w", mapError(err))
	}
	defer rows.Close()
	var v audit.Verifier
	for rows.Next() {
		e, err := scanAudit(rows)
		if err != nil {
			// A row that cannot even be decoded (e.g. detail edited into
			// invalid JSON) is tampering too; report it as such.
			v.Add(audit.Entry{Seq: e.Seq, Hash: "undecodable"})
			continue
		}
		v.Add(e)
	}
	if err := rows.Err(); err != nil {
		return AuditReport{}, fmt.Errorf("verify audit log: %w", mapError(err))
	}
	checked, problem := v.Finish(head)
	return AuditReport{Checked: checked, Head: head.Seq, Problem: problem}, nil
}

func scanAudit(row rowScanner) (audit.Entry, error) {
	var e audit.Entry
	var at int64
	var detail string
	if err := row.Scan(&e.Seq, &at, &e.Actor, &e.Action, &e.Target, &e.Remote, &detail, &e.Prev, &e.Hash); err != nil {
		return audit.Entry{}, err
	}
	e.Time = fromMicros(at)
	var err error
	if e.Detail, err = decodeMap(detail); err != nil {
		return e, fmt.Errorf("audit entry %d detail: %w", e.Seq, err)
	}
	return e, nil
}
