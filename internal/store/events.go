package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"iter"
	"time"

	"github.com/opsbook/opsbook/internal/runbook"
)

// Event page sizes. A step.output event carries up to ~64 KiB, so a default
// page stays around 16 MiB at most.
const (
	DefaultEventLimit = 256
	MaxEventLimit     = 10000
)

// AppendEvents appends evs to the run's log in one transaction and returns
// them as stored: RunID set, Seq assigned densely (1, 2, 3… per run, in
// argument order), Time set to now when zero. Either all are written or
// none. When it returns nil the events survive the death of the process;
// a batch with any event for which fsyncedEvent holds also survives power
// loss, with everything appended before it (see sqlitePragmas).
// Concurrent appenders to one run are serialised (see bumpSQL), so
// sequence numbers never repeat or skip. Seq values passed in are ignored.
// An unknown run is ErrNotFound; an event without a type, with another
// run's id or with a stream other than stdout/stderr is ErrInvalid.
func (s *Store) AppendEvents(ctx context.Context, runID string, evs ...runbook.Event) ([]runbook.Event, error) {
	return s.appendEvents(ctx, runID, evs, nil)
}

// appendHook runs inside AppendEvents' transaction: before may keep only
// some of the events (none: nothing is appended) or refuse the batch;
// after sees the events kept and as stored, and may write more. Either may
// be nil. reported marks the events of a run executing elsewhere, whose
// gate decisions are recorded as they were taken (AppendReportedEvents).
type appendHook struct {
	before   func(ctx context.Context, tx *sql.Tx, evs []runbook.Event) ([]runbook.Event, error)
	after    func(ctx context.Context, tx *sql.Tx, in, out []runbook.Event) error
	reported bool
}

// CreateRunWithEvents records a new run, as CreateRun does, and appends its
// first events, as AppendEvents does, in one transaction: the run exists
// with them or not at all, and on SQLite one commit (one fsync, when an
// event needs it) records both.
func (s *Store) CreateRunWithEvents(ctx context.Context, r *runbook.Run, evs ...runbook.Event) ([]runbook.Event, error) {
	if r.Runbook == "" {
		return nil, fmt.Errorf("create run: %w: runbook is empty", ErrInvalid)
	}
	if r.ID == "" {
		r.ID = NewRunID()
	}
	created := *r
	params, err := newRunRow(&created)
	if err != nil {
		return nil, fmt.Errorf("create run: %w", err)
	}
	out, err := s.appendEvents(ctx, created.ID, evs, &appendHook{
		before: func(ctx context.Context, tx *sql.Tx, evs []runbook.Event) ([]runbook.Event, error) {
			return evs, insertRun(ctx, tx, &created, params)
		},
	})
	if err != nil {
		return nil, err
	}
	*r = created
	return out, nil
}

// AppendEventsAndUpdateRun appends evs, as AppendEvents does, and writes
// the run's changing fields, as UpdateRun does, in one transaction: a run's
// last event and its final status are recorded together, by one commit.
func (s *Store) AppendEventsAndUpdateRun(ctx context.Context, r runbook.Run, evs ...runbook.Event) ([]runbook.Event, error) {
	return s.appendEvents(ctx, r.ID, evs, &appendHook{
		after: func(ctx context.Context, tx *sql.Tx, _, _ []runbook.Event) error {
			return updateRun(ctx, tx, r)
		},
	})
}

func (s *Store) appendEvents(ctx context.Context, runID string, evs []runbook.Event, hook *appendHook) ([]runbook.Event, error) {
	if len(evs) == 0 {
		return nil, nil
	}
	resultsOnly := true
	for _, ev := range evs {
		resultsOnly = resultsOnly && !fsyncedEvent(ev.Type)
	}
	db := s.db
	if s.dialect == DialectSQLite {
		s.appendMu.Lock()
		defer s.appendMu.Unlock()
		db = s.appendDB
		level := "FULL"
		if resultsOnly {
			level = "NORMAL"
		}
		if err := s.setAppendSync(ctx, level); err != nil {
			return nil, fmt.Errorf("append events to run %s: %w", runID, mapError(err))
		}
	}
	if s.dialect == DialectSQLite && hook == nil && ctx.Done() == nil && plainBatch(evs) {
		return s.appendDirect(ctx, runID, evs)
	}
	// Prepared before the transaction takes a connection: preparing needs
	// one of its own, and with every connection held by an appender's
	// transaction waiting here the first appends would never finish.
	stmts, err := s.appendStatements(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("append events to run %s: %w", runID, mapError(err))
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("append events to run %s: %w", runID, mapError(err))
	}
	defer tx.Rollback()
	if resultsOnly && s.dialect == DialectPostgres {
		if _, err := tx.ExecContext(ctx, `SET LOCAL synchronous_commit TO OFF`); err != nil {
			return nil, fmt.Errorf("append events to run %s: %w", runID, mapError(err))
		}
	}

	if hook != nil && hook.before != nil {
		if evs, err = hook.before(ctx, tx, evs); err != nil {
			return nil, fmt.Errorf("append events to run %s: %w", runID, err)
		}
		if len(evs) == 0 {
			return nil, nil
		}
	}

	var last int64
	err = tx.StmtContext(ctx, stmts.bump).QueryRowContext(ctx, runID, int64(len(evs))).Scan(&last)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("append events to run %s: %w", runID, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("append events to run %s: %w", runID, mapError(err))
	}
	first := last - int64(len(evs)) + 1

	stmt := tx.StmtContext(ctx, stmts.insert)
	defer stmt.Close()
	now := time.Now()
	out := make([]runbook.Event, len(evs))
	for i, ev := range evs {
		// Checked inside the transaction on purpose: a bad event after good
		// ones must roll the good ones back too.
		if err := validateEvent(runID, ev); err != nil {
			return nil, fmt.Errorf("append events to run %s: event %d: %w", runID, i+1, err)
		}
		// A reported run's decisions were taken where it executes; the log
		// records them as they were (hook: AppendReportedEvents).
		if ev.Type == runbook.EventGateDecided && (hook == nil || !hook.reported) {
			if err := firstDecision(ctx, tx, runID, ev); err != nil {
				return nil, fmt.Errorf("append events to run %s: %w", runID, err)
			}
		}
		data, err := stamp(&ev, runID, first+int64(i), now)
		if err != nil {
			return nil, fmt.Errorf("append events to run %s: event %d data: %w", runID, i+1, err)
		}
		args := []any{runID, ev.Seq, micros(ev.Time), string(ev.Type), ev.Step, ev.Host, ev.Actor,
			ev.Attempt, ev.Stream, []byte(ev.Text), data}
		if _, err = stmt.ExecContext(ctx, args...); err != nil {
			return nil, fmt.Errorf("append events to run %s: %w", runID, mapError(err))
		}
		// A notable event and its notice commit together: no notification
		// is lost by a crash, and none is sent for an event that was not.
		if n, ok := noticeFor(ev); ok {
			if _, err = tx.ExecContext(ctx, insertNoticeSQL, n.Dedupe, n.Kind, n.RunID, n.Seq, "", "", micros(n.CreatedAt)); err != nil {
				return nil, fmt.Errorf("append events to run %s: notice: %w", runID, mapError(err))
			}
		}
		out[i] = ev
	}
	if hook != nil && hook.after != nil {
		if err := hook.after(ctx, tx, evs, out); err != nil {
			return nil, fmt.Errorf("append events to run %s: %w", runID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("append events to run %s: commit: %w", runID, mapError(err))
	}
	return out, nil
}

// plainBatch reports whether a batch needs nothing but its events
// inserted: no gate decision to check, no notice to queue.
func plainBatch(evs []runbook.Event) bool {
	for _, ev := range evs {
		if ev.Type == runbook.EventGateDecided || ev.Type.Notable() {
			return false
		}
	}
	return true
}

// appendDirect is appendEvents for a plain batch on SQLite, appended
// through the driver's connection itself rather than database/sql: a
// database/sql transaction starts goroutines to watch its context (one per
// transaction, one per query, and the driver one for COMMIT), and waking
// each costs the scheduler more than the insert takes. It is used only
// for a context that is never done, which those goroutines would watch in
// vain. Called with appendMu held, after setAppendSync; the events are
// as appendEvents documents.
func (s *Store) appendDirect(ctx context.Context, runID string, evs []runbook.Event) ([]runbook.Event, error) {
	conn, err := s.appendDB.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("append events to run %s: %w", runID, mapError(err))
	}
	defer conn.Close()
	var out []runbook.Event
	err = conn.Raw(func(dc any) error {
		var err error
		out, err = s.appendOn(dc, runID, evs)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("append events to run %s: %w", runID, err)
	}
	s.noteOutput(conn, outputBytes(evs))
	return out, nil
}

// directStmts are appendDirect's statements, prepared on the append
// connection (conn) when it is first used. Guarded by appendMu.
type directStmts struct {
	conn         any
	bump, insert driver.Stmt
}

func (s *Store) appendOn(dc any, runID string, evs []runbook.Event) ([]runbook.Event, error) {
	// No context with a Done channel reaches the driver: it would start a
	// goroutine per statement to watch it.
	ctx := context.Background()
	if s.direct.conn != dc {
		// A connection of its own (the first, or database/sql replaced a
		// broken one); the statements of a closed one went with it.
		s.direct = directStmts{}
		prep := dc.(driver.ConnPrepareContext)
		bump, err := prep.PrepareContext(ctx, s.bumpSQL())
		if err != nil {
			return nil, mapError(err)
		}
		insert, err := prep.PrepareContext(ctx, insertEventSQL)
		if err != nil {
			bump.Close()
			return nil, mapError(err)
		}
		s.direct = directStmts{conn: dc, bump: bump, insert: insert}
	}
	tx, err := dc.(driver.ConnBeginTx).BeginTx(ctx, driver.TxOptions{})
	if err != nil {
		return nil, mapError(err)
	}
	committed := false
	defer func() {
		if !committed {
			tx.Rollback()
		}
	}()
	rows, err := s.direct.bump.(driver.StmtQueryContext).QueryContext(ctx, []driver.NamedValue{
		{Ordinal: 1, Value: runID}, {Ordinal: 2, Value: int64(len(evs))}})
	if err != nil {
		return nil, mapError(err)
	}
	dest := make([]driver.Value, 1)
	err = rows.Next(dest)
	rows.Close()
	if errors.Is(err, io.EOF) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, mapError(err)
	}
	last, ok := dest[0].(int64)
	if !ok {
		return nil, fmt.Errorf("last sequence number is %T, not an integer", dest[0])
	}
	first := last - int64(len(evs)) + 1
	now := time.Now()
	out := make([]runbook.Event, len(evs))
	insert := s.direct.insert.(driver.StmtExecContext)
	args := make([]driver.NamedValue, 11)
	for i, ev := range evs {
		if err := validateEvent(runID, ev); err != nil {
			return nil, fmt.Errorf("event %d: %w", i+1, err)
		}
		data, err := stamp(&ev, runID, first+int64(i), now)
		if err != nil {
			return nil, fmt.Errorf("event %d data: %w", i+1, err)
		}
		for j, v := range []driver.Value{runID, ev.Seq, micros(ev.Time), string(ev.Type), ev.Step, ev.Host, ev.Actor,
			int64(ev.Attempt), ev.Stream, []byte(ev.Text), data} {
			args[j] = driver.NamedValue{Ordinal: j + 1, Value: v}
		}
		if _, err := insert.ExecContext(ctx, args); err != nil {
			return nil, mapError(err)
		}
		out[i] = ev
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("commit: %w", mapError(err))
	}
	committed = true
	return out, nil
}

// setAppendSync sets PRAGMA synchronous on the append connection (the
// pool's only one) when it is not at level already. Called with appendMu
// held. The level is forgotten first, so that a failure leaves it unknown
// and the next append sets it again.
func (s *Store) setAppendSync(ctx context.Context, level string) error {
	if s.appendSync == level {
		return nil
	}
	s.appendSync = ""
	if _, err := s.appendDB.ExecContext(ctx, "PRAGMA synchronous = "+level); err != nil {
		return err
	}
	s.appendSync = level
	return nil
}

// bumpSQL is the statement that reserves $2 sequence numbers for run $1
// and returns the last of them, or no row for an unknown run.
//
// PostgreSQL bumps runs.last_seq, whose row lock orders the run's
// appenders. SQLite reads the last seq from the events' primary key
// instead: an append there runs in a BEGIN IMMEDIATE transaction, which
// holds the database's one write lock from its start, so appenders of every
// process are ordered already, and not rewriting the run's row spares every
// commit a page (a third of what it writes for one event). runs.last_seq is
// still honoured when ahead, as a writer that bumps it leaves it.
func (s *Store) bumpSQL() string {
	if s.dialect == DialectSQLite {
		return `SELECT max(last_seq, coalesce((SELECT max(seq) FROM events WHERE run_id = $1), 0)) + $2 FROM runs WHERE id = $1`
	}
	return `UPDATE runs SET last_seq = last_seq + $2 WHERE id = $1 RETURNING last_seq`
}

const insertEventSQL = `INSERT INTO events (run_id, seq, at, type, step, host, actor, attempt, stream, text, data)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`

// appendStmts are AppendEvents' two statements, prepared once per pool:
// compiling the SQL again for every event costs more than running it.
type appendStmts struct{ bump, insert *sql.Stmt }

func (s *Store) appendStatements(ctx context.Context, db *sql.DB) (*appendStmts, error) {
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	if st, ok := s.stmts[db]; ok {
		return st, nil
	}
	bump, err := db.PrepareContext(ctx, s.bumpSQL())
	if err != nil {
		return nil, err
	}
	insert, err := db.PrepareContext(ctx, insertEventSQL)
	if err != nil {
		bump.Close()
		return nil, err
	}
	if s.stmts == nil {
		s.stmts = map[*sql.DB]*appendStmts{}
	}
	st := &appendStmts{bump: bump, insert: insert}
	s.stmts[db] = st
	return st, nil
}

// fsyncedEvent reports whether an event of this type must be on disk, not
// just in the OS's cache, when AppendEvents returns: whether something
// irreversible may follow it. Results of a step need not be: the next
// step's start syncs them (see sqlitePragmas). Nor need step.spawned: it
// names a process that a power loss kills as well, so it only has to survive
// the death of opsbook itself, which a commit without fsync does.
func fsyncedEvent(t runbook.EventType) bool {
	switch t {
	case runbook.EventStepOutput, runbook.EventStepVerified, runbook.EventStepFinished, runbook.EventStepRetry,
		runbook.EventStepPublished, runbook.EventStepSpawned:
		return false
	}
	return true
}

// outputBytes is the length of the step output among evs.
func outputBytes(evs []runbook.Event) int {
	n := 0
	for _, ev := range evs {
		if ev.Type == runbook.EventStepOutput {
			n += len(ev.Text)
		}
	}
	return n
}

// stamp gives a validated event its run, its sequence number and its time
// as stored (now when it has none), and returns its data as stored.
func stamp(ev *runbook.Event, runID string, seq int64, now time.Time) (string, error) {
	ev.RunID = runID
	ev.Seq = seq
	if ev.Time.IsZero() {
		ev.Time = now
	}
	ev.Time = truncate(ev.Time)
	return encodeMap(ev.Data)
}

func validateEvent(runID string, ev runbook.Event) error {
	switch {
	case ev.Type == "":
		return fmt.Errorf("%w: event type is empty", ErrInvalid)
	case ev.RunID != "" && ev.RunID != runID:
		return fmt.Errorf("%w: event belongs to run %s", ErrInvalid, ev.RunID)
	case ev.Stream != "" && ev.Stream != "stdout" && ev.Stream != "stderr":
		return fmt.Errorf("%w: stream %q is neither stdout nor stderr", ErrInvalid, ev.Stream)
	case ev.Attempt < 0:
		return fmt.Errorf("%w: attempt %d is negative", ErrInvalid, ev.Attempt)
	}
	return nil
}

// Events returns up to limit events of the run with Seq > afterSeq in
// ascending order (limit 0 means DefaultEventLimit; at most MaxEventLimit).
// Page by passing the last Seq returned. An unknown run has no events.
func (s *Store) Events(ctx context.Context, runID string, afterSeq int64, limit int) ([]runbook.Event, error) {
	return s.events(ctx, runID, afterSeq, limit, true)
}

// events is Events; without output, step.output events come without their
// text and with its length in Size.
func (s *Store) events(ctx context.Context, runID string, afterSeq int64, limit int, output bool) ([]runbook.Event, error) {
	if limit <= 0 {
		limit = DefaultEventLimit
	}
	limit = min(limit, MaxEventLimit)
	text := "text, 0"
	if !output {
		// The length of a blob is in its record's header: the output
		// itself is not read.
		empty, length := "X''", "length(text)"
		if s.dialect == DialectPostgres {
			empty, length = "''::bytea", "octet_length(text)"
		}
		text = fmt.Sprintf("CASE WHEN type = '%[1]s' THEN %[2]s ELSE text END, CASE WHEN type = '%[1]s' THEN %[3]s ELSE 0 END", runbook.EventStepOutput, empty, length)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT seq, at, type, step, host, actor, attempt, stream, `+text+`, data
		FROM events WHERE run_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`, runID, afterSeq, limit)
	if err != nil {
		return nil, fmt.Errorf("read events of run %s: %w", runID, mapError(err))
	}
	defer rows.Close()
	evs := []runbook.Event{}
	for rows.Next() {
		ev := runbook.Event{RunID: runID}
		var at int64
		var typ, data string
		var text []byte
		if err := rows.Scan(&ev.Seq, &at, &typ, &ev.Step, &ev.Host, &ev.Actor, &ev.Attempt, &ev.Stream, &text, &ev.Size, &data); err != nil {
			return nil, fmt.Errorf("read events of run %s: %w", runID, err)
		}
		ev.Time = fromMicros(at)
		ev.Type = runbook.EventType(typ)
		ev.Text = string(text)
		if ev.Data, err = decodeMap(data); err != nil {
			return nil, fmt.Errorf("read event %d of run %s: data: %w", ev.Seq, runID, err)
		}
		evs = append(evs, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read events of run %s: %w", runID, mapError(err))
	}
	return evs, nil
}

// AllEvents yields the run's events after afterSeq in order, a page at a
// time, so a log of any size is read in bounded memory. It stops at the
// first error, which it yields.
func (s *Store) AllEvents(ctx context.Context, runID string, afterSeq int64) iter.Seq2[runbook.Event, error] {
	return s.allEvents(ctx, runID, afterSeq, true)
}

// StateEvents is AllEvents for deriving a run's state (runbook.RunState):
// step.output events come without their text, which can be gigabytes, and
// with its length in Size, all the state keeps of it.
func (s *Store) StateEvents(ctx context.Context, runID string, afterSeq int64) iter.Seq2[runbook.Event, error] {
	return s.allEvents(ctx, runID, afterSeq, false)
}

func (s *Store) allEvents(ctx context.Context, runID string, afterSeq int64, output bool) iter.Seq2[runbook.Event, error] {
	return func(yield func(runbook.Event, error) bool) {
		for {
			page, err := s.events(ctx, runID, afterSeq, DefaultEventLimit, output)
			if err != nil {
				yield(runbook.Event{}, err)
				return
			}
			for _, ev := range page {
				if !yield(ev, nil) {
					return
				}
				afterSeq = ev.Seq
			}
			if len(page) < DefaultEventLimit {
				return
			}
		}
	}
}

// LastSeq is the Seq of the run's last event, 0 when it has none.
func (s *Store) LastSeq(ctx context.Context, runID string) (int64, error) {
	var last int64
	q := `SELECT last_seq FROM runs WHERE id = $1`
	if s.dialect == DialectSQLite {
		q = `SELECT max(last_seq, coalesce((SELECT max(seq) FROM events WHERE run_id = $1), 0)) FROM runs WHERE id = $1` // see bumpSQL
	}
	err := s.db.QueryRowContext(ctx, q, runID).Scan(&last)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("run %s: %w", runID, ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("read last seq of run %s: %w", runID, mapError(err))
	}
	return last, nil
}

// ErrAlreadyDecided is a second decision by one person on one gate. It
// wraps ErrConflict.
var ErrAlreadyDecided = fmt.Errorf("%w: this person has already decided this gate", ErrConflict)

// firstDecision refuses a gate decision by an actor who already decided
// the same gate (step and phase) since it last started waiting. It runs
// inside AppendEvents' transaction after the run's row was bumped, which
// serialises appenders of one run on both dialects (SQLite: one writer;
// PostgreSQL: the row lock), so parallel decisions by one person record
// one event, however many requests race.
func firstDecision(ctx context.Context, tx *sql.Tx, runID string, ev runbook.Event) error {
	rows, err := tx.QueryContext(ctx, `SELECT type, actor, data FROM events
		WHERE run_id = $1 AND step = $2 AND type IN ($3, $4) ORDER BY seq`,
		runID, ev.Step, string(runbook.EventGateWaiting), string(runbook.EventGateDecided))
	if err != nil {
		return mapError(err)
	}
	defer rows.Close()
	decided := false
	for rows.Next() {
		var typ, actor, data string
		if err := rows.Scan(&typ, &actor, &data); err != nil {
			return err
		}
		m, err := decodeMap(data)
		if err != nil {
			return err
		}
		if m["phase"] != ev.Data["phase"] {
			continue
		}
		switch {
		case typ == string(runbook.EventGateWaiting):
			decided = false // the gate waits afresh: earlier decisions were for another wait
		case actor == ev.Actor:
			decided = true
		}
	}
	if err := rows.Err(); err != nil {
		return mapError(err)
	}
	if decided {
		return fmt.Errorf("%w (%s on %s)", ErrAlreadyDecided, ev.Actor, ev.Step)
	}
	return nil
}
