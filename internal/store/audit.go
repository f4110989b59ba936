package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
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
	lockHead := `SELECT seq, hash, mac FROM audit_head WHERE id = 1`
	if s.dialect == DialectPostgres {
		lockHead += ` FOR UPDATE` // SQLite's writer lock (BEGIN IMMEDIATE) already serialises
	}
	var last *audit.Entry
	var head audit.Entry
	var headMAC string
	switch err := tx.QueryRowContext(ctx, lockHead).Scan(&head.Seq, &head.Hash, &headMAC); {
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
	mac := s.nextAnchor(last, headMAC, e)
	if last == nil {
		_, err = tx.ExecContext(ctx, `INSERT INTO audit_head (id, seq, hash, mac) VALUES (1, $1, $2, $3)`, e.Seq, e.Hash, mac)
	} else {
		_, err = tx.ExecContext(ctx, `UPDATE audit_head SET seq = $1, hash = $2, mac = $3 WHERE id = 1`, e.Seq, e.Hash, mac)
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
	Checked int64 `json:"checked"`
	Head    int64 `json:"head"` // seq of the newest entry as audit_head records it
	// HeadHash and Anchor are the newest entry's hash and the head's HMAC
	// (see SetAuditAnchor): what `opsbook audit head` prints to keep.
	HeadHash string         `json:"head_hash,omitempty"`
	Anchor   string         `json:"anchor,omitempty"`
	Problem  *audit.Problem `json:"problem,omitempty"`
}

// VerifyAudit walks the whole log in seq order and checks the chain and
// the head. Rows are streamed, so the log's size does not matter.
func (s *Store) VerifyAudit(ctx context.Context) (AuditReport, error) {
	var head *audit.Entry
	var h audit.Entry
	var headMAC string
	switch err := s.db.QueryRowContext(ctx, `SELECT seq, hash, mac FROM audit_head WHERE id = 1`).Scan(&h.Seq, &h.Hash, &headMAC); {
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
	if problem == nil {
		problem = s.checkAnchor(*head, headMAC)
	}
	return AuditReport{Checked: checked, Head: head.Seq, HeadHash: head.Hash, Anchor: headMAC, Problem: problem}, nil
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

// AuditAnchor authenticates the audit log's head with a key the database
// does not hold (secret.Keyring: the master key).
type AuditAnchor interface {
	MAC(purpose string, data []byte) string
	CheckMAC(purpose string, data []byte, mac string) error
}

const anchorPurpose = "audit-head"

// brokenAnchor marks a head that was extended while its anchor did not
// check: it stays until someone with the master key looks, so a chain
// rewritten behind the server's back is not re-anchored by its next entry.
const brokenAnchor = "broken@"

func anchorData(seq int64, hash string) []byte { return fmt.Appendf(nil, "%d\n%s", seq, hash) }

// SetAuditAnchor makes every audit append anchor the new head with a, and
// VerifyAudit check the anchor. Without one (a store opened by a tool that
// has no master key) heads are written unanchored and not checked.
func (s *Store) SetAuditAnchor(a AuditAnchor) { s.auditAnchor = a }

// nextAnchor is the anchor of the head that follows last.
func (s *Store) nextAnchor(last *audit.Entry, lastMAC string, e audit.Entry) string {
	if s.auditAnchor == nil {
		return ""
	}
	if last != nil && lastMAC != "" {
		if strings.HasPrefix(lastMAC, brokenAnchor) {
			return lastMAC
		}
		if s.auditAnchor.CheckMAC(anchorPurpose, anchorData(last.Seq, last.Hash), lastMAC) != nil {
			return fmt.Sprintf("%s%d", brokenAnchor, last.Seq)
		}
	}
	return s.auditAnchor.MAC(anchorPurpose, anchorData(e.Seq, e.Hash))
}

// checkAnchor checks the head's anchor, when the store has the key.
func (s *Store) checkAnchor(head audit.Entry, mac string) *audit.Problem {
	if s.auditAnchor == nil || head.Seq == 0 {
		return nil
	}
	switch {
	case mac == "":
		return &audit.Problem{Seq: head.Seq, Reason: "the head is not anchored: it was written without the master key (the server anchors it when it starts)"}
	case strings.HasPrefix(mac, brokenAnchor):
		return &audit.Problem{Seq: head.Seq, Reason: fmt.Sprintf("the log was rewritten: when entry %s was the newest its anchor did not match (whoever wrote it had no master key)", strings.TrimPrefix(mac, brokenAnchor))}
	case s.auditAnchor.CheckMAC(anchorPurpose, anchorData(head.Seq, head.Hash), mac) != nil:
		return &audit.Problem{Seq: head.Seq, Reason: "the head's anchor does not match: the chain was rebuilt by someone without the master key"}
	}
	return nil
}

// AnchorAudit anchors a head written without the master key (a log from
// before anchors existed, or appended by a key-less tool): trust on first
// use, done by the server when it starts. An anchored or broken head is
// left alone.
func (s *Store) AnchorAudit(ctx context.Context) error {
	if s.auditAnchor == nil {
		return nil
	}
	var seq int64
	var hash, mac string
	err := s.db.QueryRowContext(ctx, `SELECT seq, hash, mac FROM audit_head WHERE id = 1`).Scan(&seq, &hash, &mac)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && mac != "") {
		return nil
	}
	if err != nil {
		return fmt.Errorf("anchor audit log: %w", mapError(err))
	}
	_, err = s.db.ExecContext(ctx, `UPDATE audit_head SET mac = $1 WHERE id = 1 AND seq = $2 AND mac = ''`,
		s.auditAnchor.MAC(anchorPurpose, anchorData(seq, hash)), seq)
	if err != nil {
		return fmt.Errorf("anchor audit log: %w", mapError(err))
	}
	return nil
}

// CheckAuditEntry reports whether the entry seq still has hash: checked
// against a head exported earlier (`opsbook audit head`), it finds a log
// rewritten or cut back since, even by someone holding the master key.
func (s *Store) CheckAuditEntry(ctx context.Context, seq int64, hash string) *audit.Problem {
	var got string
	err := s.db.QueryRowContext(ctx, `SELECT hash FROM audit_log WHERE seq = $1`, seq).Scan(&got)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return &audit.Problem{Seq: seq, Reason: "the exported head is gone: the log was cut back"}
	case err != nil:
		return &audit.Problem{Seq: seq, Reason: "cannot read it: " + err.Error()}
	case got != hash:
		return &audit.Problem{Seq: seq, Reason: "its hash is not the exported head's: the log was rewritten since it was exported"}
	}
	return nil
}
