package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/opsbook/opsbook/internal/runbook"
)

// MinIDPrefix is the shortest id prefix GetRun resolves.
const MinIDPrefix = 4

const maxCandidates = 5

// Run list page sizes.
const (
	DefaultRunLimit = 50
	MaxRunLimit     = 1000
)

const runColumns = `id, workspace, runbook, task, title, environment, snapshot, params,
	status, created_by, created_at, started_at, finished_at, emergency`

// RunFilter selects runs for ListRuns. Zero fields do not filter.
type RunFilter struct {
	Runbook     string
	Environment string
	Task        string
	Status      []runbook.RunStatus // any of these
	Runbooks    []string            // any of these (a project's runbooks); with Runbook, both must hold
	CreatedBy   string              // who started the run
	Since       time.Time           // created at or after
	Until       time.Time           // created before
	Limit       int                 // page size; DefaultRunLimit when 0, at most MaxRunLimit
	Before      string              // cursor: only runs older than this run id (the last id of the previous page)
}

// CreateRun records a new run. It assigns r.ID (see NewRunID) when empty,
// r.CreatedAt when zero, and r.Status = pending when empty. An id that
// exists already is ErrConflict.
func (s *Store) CreateRun(ctx context.Context, r *runbook.Run) error {
	if r.Runbook == "" {
		return fmt.Errorf("create run: %w: runbook is empty", ErrInvalid)
	}
	if r.ID == "" {
		r.ID = NewRunID()
	}
	params, err := newRunRow(r)
	if err != nil {
		return fmt.Errorf("create run: %w", err)
	}
	return insertRun(ctx, s.db, r, params)
}

// execer is a *sql.DB or a *sql.Tx.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// insertRun inserts the row of a new run, filled in by newRunRow.
func insertRun(ctx context.Context, db execer, r *runbook.Run, params string) error {
	_, err := db.ExecContext(ctx, `INSERT INTO runs (`+runColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
		r.ID, r.Workspace, r.Runbook, r.Task, r.Title, r.Environment, r.Snapshot, params,
		string(r.Status), r.CreatedBy, micros(r.CreatedAt), nullMicros(r.StartedAt), nullMicros(r.FinishedAt), r.Emergency)
	if err != nil {
		return fmt.Errorf("create run %s: %w", r.ID, mapError(err))
	}
	return nil
}

// GetRun returns the run with this id or, failing that, the only run whose
// id starts with it (at least MinIDPrefix characters, "r-" and letter case
// optional). Several matches give an *AmbiguousIDError; none, ErrNotFound.
func (s *Store) GetRun(ctx context.Context, id string) (runbook.Run, error) {
	r, err := scanRun(s.db.QueryRowContext(ctx, `SELECT `+runColumns+` FROM runs WHERE id = $1`, id))
	if !errors.Is(err, sql.ErrNoRows) {
		if err != nil {
			return runbook.Run{}, fmt.Errorf("get run %s: %w", id, mapError(err))
		}
		return r, nil
	}
	ids, err := s.runIDsWithPrefix(ctx, id)
	if err != nil {
		return runbook.Run{}, err
	}
	switch len(ids) {
	case 0:
		return runbook.Run{}, fmt.Errorf("run %s: %w; list runs with `opsbook runs`", id, ErrNotFound)
	case 1:
		r, err := scanRun(s.db.QueryRowContext(ctx, `SELECT `+runColumns+` FROM runs WHERE id = $1`, ids[0]))
		if err != nil {
			return runbook.Run{}, fmt.Errorf("get run %s: %w", ids[0], mapError(err))
		}
		return r, nil
	}
	if len(ids) > maxCandidates {
		ids = append(ids[:maxCandidates], "…")
	}
	return runbook.Run{}, &AmbiguousIDError{Prefix: id, Candidates: ids}
}

// runIDsWithPrefix returns up to maxCandidates+1 ids starting with prefix,
// as typed or normalised to "r-" and upper case. It compares ranges rather
// than using LIKE, which is case-insensitive in SQLite and not indexable
// under non-C collations in PostgreSQL.
func (s *Store) runIDsWithPrefix(ctx context.Context, prefix string) ([]string, error) {
	if len(prefix) < MinIDPrefix {
		return nil, nil
	}
	normal := strings.ToUpper(strings.TrimPrefix(prefix, runIDPrefix))
	normal = runIDPrefix + normal
	lo1, hi1, ok1 := prefixRange(prefix)
	lo2, hi2, ok2 := prefixRange(normal)
	if !ok1 || !ok2 {
		return nil, nil // not ASCII: no run id has it
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM runs
		WHERE (id >= $1 AND id < $2) OR (id >= $3 AND id < $4)
		ORDER BY id DESC LIMIT $5`, lo1, hi1, lo2, hi2, maxCandidates+1)
	if err != nil {
		return nil, fmt.Errorf("find run %s: %w", prefix, mapError(err))
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("find run %s: %w", prefix, err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find run %s: %w", prefix, mapError(err))
	}
	return ids, nil
}

// prefixRange gives [lo, hi) holding exactly the ASCII strings with this prefix.
func prefixRange(prefix string) (lo, hi string, ok bool) {
	for i := 0; i < len(prefix); i++ {
		if prefix[i] == 0 || prefix[i] >= 0x7f {
			return "", "", false
		}
	}
	return prefix, prefix[:len(prefix)-1] + string(prefix[len(prefix)-1]+1), true
}

// ListRuns returns runs matching f, newest first. To page, pass the last
// id of a page as the next filter's Before.
func (s *Store) ListRuns(ctx context.Context, f RunFilter) ([]runbook.Run, error) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if f.Runbook != "" {
		where = append(where, "runbook = "+arg(f.Runbook))
	}
	if f.Environment != "" {
		where = append(where, "environment = "+arg(f.Environment))
	}
	if f.Task != "" {
		where = append(where, "task = "+arg(f.Task))
	}
	if len(f.Status) > 0 {
		var in []string
		for _, st := range f.Status {
			in = append(in, arg(string(st)))
		}
		where = append(where, "status IN ("+strings.Join(in, ", ")+")")
	}
	if len(f.Runbooks) > 0 {
		var in []string
		for _, rb := range f.Runbooks {
			in = append(in, arg(rb))
		}
		where = append(where, "runbook IN ("+strings.Join(in, ", ")+")")
	}
	if f.CreatedBy != "" {
		where = append(where, "created_by = "+arg(f.CreatedBy))
	}
	if !f.Since.IsZero() {
		where = append(where, "created_at >= "+arg(micros(f.Since)))
	}
	if !f.Until.IsZero() {
		where = append(where, "created_at < "+arg(micros(f.Until)))
	}
	if f.Before != "" {
		var createdAt int64
		err := s.db.QueryRowContext(ctx, `SELECT created_at FROM runs WHERE id = $1`, f.Before).Scan(&createdAt)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("list runs before %s: %w: the cursor is not a run id", f.Before, ErrNotFound)
		}
		if err != nil {
			return nil, fmt.Errorf("list runs: %w", mapError(err))
		}
		c, id := arg(createdAt), arg(f.Before)
		where = append(where, fmt.Sprintf("(created_at < %s OR (created_at = %s AND id < %s))", c, c, id))
	}
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultRunLimit
	}
	limit = min(limit, MaxRunLimit)
	q := `SELECT ` + runColumns + ` FROM runs`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY created_at DESC, id DESC LIMIT " + arg(limit)

	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", mapError(err))
	}
	defer rows.Close()
	runs := []runbook.Run{}
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, fmt.Errorf("list runs: %w", err)
		}
		runs = append(runs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list runs: %w", mapError(err))
	}
	return runs, nil
}

// UpdateRun writes the fields of a run that change while it executes:
// title, snapshot, params, status, start and finish times, emergency
// reason. Identity fields (runbook, environment, task, creator, creation
// time) are fixed at creation.
func (s *Store) UpdateRun(ctx context.Context, r runbook.Run) error {
	return updateRun(ctx, fullSync{s}, r)
}

// fullSync executes through execAt at synchronous=FULL.
type fullSync struct{ s *Store }

func (f fullSync) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return f.s.execAt(ctx, "FULL", query, args...)
}

func updateRun(ctx context.Context, db execer, r runbook.Run) error {
	params, err := encodeMap(r.Params)
	if err != nil {
		return fmt.Errorf("update run %s: %w", r.ID, err)
	}
	res, err := db.ExecContext(ctx, `UPDATE runs SET title = $2, snapshot = $3, params = $4,
		status = $5, started_at = $6, finished_at = $7, emergency = $8 WHERE id = $1`,
		r.ID, r.Title, r.Snapshot, params, string(r.Status),
		nullMicros(r.StartedAt), nullMicros(r.FinishedAt), r.Emergency)
	if err != nil {
		return fmt.Errorf("update run %s: %w", r.ID, mapError(err))
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("update run %s: %w", r.ID, err)
	} else if n == 0 {
		return fmt.Errorf("update run %s: %w", r.ID, ErrNotFound)
	}
	return nil
}

// DeleteRun removes a run with its events and lease (retention).
func (s *Store) DeleteRun(ctx context.Context, id string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM runs WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("delete run %s: %w", id, mapError(err))
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("delete run %s: %w", id, err)
	} else if n == 0 {
		return fmt.Errorf("delete run %s: %w", id, ErrNotFound)
	}
	return nil
}

type rowScanner interface{ Scan(dest ...any) error }

func scanRun(row rowScanner) (runbook.Run, error) {
	var r runbook.Run
	var params, status string
	var createdAt int64
	var startedAt, finishedAt sql.NullInt64
	err := row.Scan(&r.ID, &r.Workspace, &r.Runbook, &r.Task, &r.Title, &r.Environment, &r.Snapshot, &params,
		&status, &r.CreatedBy, &createdAt, &startedAt, &finishedAt, &r.Emergency)
	if err != nil {
		return runbook.Run{}, err
	}
	r.Status = runbook.RunStatus(status)
	r.CreatedAt = fromMicros(createdAt)
	if startedAt.Valid {
		r.StartedAt = fromMicros(startedAt.Int64)
	}
	if finishedAt.Valid {
		r.FinishedAt = fromMicros(finishedAt.Int64)
	}
	if r.Params, err = decodeMap(params); err != nil {
		return runbook.Run{}, fmt.Errorf("run %s params: %w", r.ID, err)
	}
	return r, nil
}

// truncate drops what the store cannot keep (below a microsecond, the
// monotonic reading, the location) so callers hold what a read returns.
func truncate(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return fromMicros(t.UnixMicro())
}

func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

func nullMicros(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMicro(), Valid: true}
}

func encodeMap(m map[string]string) (string, error) {
	if len(m) == 0 {
		return "", nil
	}
	b, err := json.Marshal(m)
	return string(b), err
}

func decodeMap(s string) (map[string]string, error) {
	if s == "" {
		return nil, nil
	}
	var m map[string]string
	err := json.Unmarshal([]byte(s), &m)
	return m, err
}

// prefixed qualifies each column of a list with a table alias.
func prefixed(alias, columns string) string {
	cols := strings.Split(columns, ",")
	for i, c := range cols {
		cols[i] = alias + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}

// newRunRow fills in what a new run row takes by default (created now,
// pending) and truncates its times to what the store keeps, and returns
// its parameters encoded for the params column.
func newRunRow(r *runbook.Run) (string, error) {
	if r.CreatedAt.IsZero() {
		r.CreatedAt = time.Now()
	}
	r.CreatedAt = truncate(r.CreatedAt)
	r.StartedAt, r.FinishedAt = truncate(r.StartedAt), truncate(r.FinishedAt)
	if r.Status == "" {
		r.Status = runbook.RunPending
	}
	return encodeMap(r.Params)
}
