package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/opsbook/opsbook/internal/runbook"
)

// A reported run executes outside the server — `opsbook run --local` on
// someone's machine — and is recorded on the server as it happens: the
// reporter registers it (CreateReportedRun), then appends its events in
// batches (AppendReportedEvents), each event carrying the reporter's own
// sequence number. The server never executes, resumes or takes over such
// a run (OrphanedRuns and UnqueuedPendingRuns leave it out).

// ReportedRun is the server's side of a reported run.
type ReportedRun struct {
	RunID    string `json:"run_id"`
	Reporter string `json:"reporter"`  // the authenticated user who registered it
	AckedSeq int64  `json:"acked_seq"` // the reporter's seq of the last event appended
}

// SeqGapError refuses a batch of reported events that does not continue
// the log: an event is missing between what the server has and the batch.
type SeqGapError struct {
	RunID    string
	Expected int64 // the reporter's seq the next event must have
	Got      int64
}

func (e *SeqGapError) Error() string {
	return fmt.Sprintf("run %s: the next reported event must be number %d, not %d; send from %d on", e.RunID, e.Expected, e.Got, e.Expected)
}

func (e *SeqGapError) Unwrap() error { return ErrConflict }

// ErrNotReporter is appending to a reported run registered by someone else.
var ErrNotReporter = errors.New("the run was reported by someone else")

// CreateReportedRun records a run executing elsewhere, reported by
// reporter, with its run row in the same transaction. Registering the same
// run again by the same reporter (a retry whose answer was lost) returns
// the run as stored and created=false; a run id that exists otherwise is
// ErrConflict.
func (s *Store) CreateReportedRun(ctx context.Context, r *runbook.Run, reporter string) (created bool, err error) {
	if r.ID == "" || r.Runbook == "" || reporter == "" {
		return false, fmt.Errorf("report run: %w: id, runbook and reporter are required", ErrInvalid)
	}
	if existing, err := s.GetReportedRun(ctx, r.ID); err == nil {
		if existing.Reporter != reporter {
			return false, fmt.Errorf("report run %s: %w", r.ID, ErrConflict)
		}
		stored, err := s.GetRun(ctx, r.ID)
		if err != nil {
			return false, err
		}
		if stored.Runbook != r.Runbook || stored.Environment != r.Environment {
			return false, fmt.Errorf("report run %s: %w: it was reported for %s in %s", r.ID, ErrConflict, stored.Runbook, stored.Environment)
		}
		*r = stored
		return false, nil
	} else if !errors.Is(err, ErrNotFound) {
		return false, err
	}
	params, err := newRunRow(r)
	if err != nil {
		return false, fmt.Errorf("report run: %w", err)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("report run %s: %w", r.ID, mapError(err))
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO runs (`+runColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
		r.ID, r.Workspace, r.Runbook, r.Task, r.Title, r.Environment, r.Snapshot, params,
		string(r.Status), r.CreatedBy, micros(r.CreatedAt), nullMicros(r.StartedAt), nullMicros(r.FinishedAt), r.Emergency); err != nil {
		return false, fmt.Errorf("report run %s: %w", r.ID, mapError(err))
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO reported_runs (run_id, reporter, acked_seq, registered_at) VALUES ($1, $2, 0, $3)`,
		r.ID, reporter, micros(time.Now())); err != nil {
		return false, fmt.Errorf("report run %s: %w", r.ID, mapError(err))
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("report run %s: commit: %w", r.ID, mapError(err))
	}
	return true, nil
}

// GetReportedRun returns the reporting record of a run; ErrNotFound when
// the run is not a reported one (or does not exist).
func (s *Store) GetReportedRun(ctx context.Context, runID string) (ReportedRun, error) {
	rr := ReportedRun{RunID: runID}
	err := s.db.QueryRowContext(ctx, `SELECT reporter, acked_seq FROM reported_runs WHERE run_id = $1`, runID).Scan(&rr.Reporter, &rr.AckedSeq)
	if errors.Is(err, sql.ErrNoRows) {
		return ReportedRun{}, fmt.Errorf("reported run %s: %w", runID, ErrNotFound)
	}
	if err != nil {
		return ReportedRun{}, fmt.Errorf("reported run %s: %w", runID, mapError(err))
	}
	return rr, nil
}

// AppendReportedEvents appends a batch of the reporter's events to a
// reported run, exactly once: each event's Seq is the reporter's own
// number; events the server has already (Seq ≤ acked) are skipped, the
// rest must continue the log without a gap (else *SeqGapError) and are
// appended in order with the server's own sequence numbers, the run's
// status, title and times following them, all in one transaction. It
// returns the reporter's seq acknowledged after the batch and the events
// as stored. Someone other than the reporter gets ErrNotReporter; a run
// that is not reported, ErrNotFound.
func (s *Store) AppendReportedEvents(ctx context.Context, runID, reporter string, evs []runbook.Event) (int64, []runbook.Event, error) {
	var acked int64
	var run runbook.Run
	hook := &appendHook{
		reported: true,
		before: func(ctx context.Context, tx *sql.Tx, evs []runbook.Event) ([]runbook.Event, error) {
			lock := ""
			if s.dialect == DialectPostgres {
				lock = " FOR UPDATE" // batches of one run are appended one after the other
			}
			var who string
			err := tx.QueryRowContext(ctx, `SELECT reporter, acked_seq FROM reported_runs WHERE run_id = $1`+lock, runID).Scan(&who, &acked)
			if errors.Is(err, sql.ErrNoRows) {
				return nil, fmt.Errorf("run %s is not a reported run: %w", runID, ErrNotFound)
			}
			if err != nil {
				return nil, mapError(err)
			}
			if who != reporter {
				return nil, ErrNotReporter
			}
			var fresh []runbook.Event
			next := acked + 1
			for _, ev := range evs {
				if ev.Seq <= acked {
					continue // sent before; its acknowledgement was lost
				}
				if ev.Seq != next {
					return nil, &SeqGapError{RunID: runID, Expected: next, Got: ev.Seq}
				}
				next++
				fresh = append(fresh, ev)
			}
			if len(fresh) == 0 {
				return nil, nil
			}
			if run, err = scanRun(tx.QueryRowContext(ctx, `SELECT `+runColumns+` FROM runs WHERE id = $1`, runID)); err != nil {
				return nil, mapError(err)
			}
			return fresh, nil
		},
		after: func(ctx context.Context, tx *sql.Tx, in, out []runbook.Event) error {
			acked = in[len(in)-1].Seq
			if _, err := tx.ExecContext(ctx, `UPDATE reported_runs SET acked_seq = $2 WHERE run_id = $1`, runID, acked); err != nil {
				return mapError(err)
			}
			st := runbook.NewRunState(runID)
			st.Status, st.StartedAt, st.FinishedAt = run.Status, run.StartedAt, run.FinishedAt
			title := run.Title
			for _, ev := range out {
				st.Apply(ev)
				if ev.Type == runbook.EventRunStarted && ev.Text != "" {
					title = ev.Text
				}
			}
			finished := st.FinishedAt
			if !st.Status.Finished() {
				finished = time.Time{}
			} else if finished.IsZero() {
				finished = out[len(out)-1].Time
			}
			_, err := tx.ExecContext(ctx, `UPDATE runs SET title = $2, status = $3, started_at = $4, finished_at = $5 WHERE id = $1`,
				runID, title, string(st.Status), nullMicros(st.StartedAt), nullMicros(finished))
			return mapError(err)
		},
	}
	out, err := s.appendEvents(ctx, runID, evs, hook)
	if err != nil {
		return 0, nil, err
	}
	return acked, out, nil
}

// RunReport is the CLI's record of a local run that reports to a server:
// whether the server has registered it and how far it has acknowledged
// the run's events.
type RunReport struct {
	RunID      string `json:"run_id"`
	Server     string `json:"server"`
	Registered bool   `json:"registered"`
	SentSeq    int64  `json:"sent_seq"`
}

// CreateRunReport marks a local run as reporting to server. Marking it
// again keeps what was acknowledged (resume of a reported run).
func (s *Store) CreateRunReport(ctx context.Context, runID, server string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO run_reports (run_id, server, registered, sent_seq, created_at)
		VALUES ($1, $2, $3, 0, $4) ON CONFLICT (run_id) DO NOTHING`, runID, server, false, micros(time.Now()))
	if err != nil {
		return fmt.Errorf("report run %s to %s: %w", runID, server, mapError(err))
	}
	return nil
}

// GetRunReport returns a local run's report record; ErrNotFound when the
// run does not report to a server.
func (s *Store) GetRunReport(ctx context.Context, runID string) (RunReport, error) {
	rr := RunReport{RunID: runID}
	err := s.db.QueryRowContext(ctx, `SELECT server, registered, sent_seq FROM run_reports WHERE run_id = $1`, runID).Scan(&rr.Server, &rr.Registered, &rr.SentSeq)
	if errors.Is(err, sql.ErrNoRows) {
		return RunReport{}, fmt.Errorf("run %s does not report to a server: %w", runID, ErrNotFound)
	}
	if err != nil {
		return RunReport{}, fmt.Errorf("run report %s: %w", runID, mapError(err))
	}
	return rr, nil
}

// MarkRunReportRegistered records that the server has registered the run.
func (s *Store) MarkRunReportRegistered(ctx context.Context, runID string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE run_reports SET registered = $2 WHERE run_id = $1`, runID, true)
	if err != nil {
		return fmt.Errorf("run report %s: %w", runID, mapError(err))
	}
	return nil
}

// SetRunReportSent records the server's acknowledgement up to seq; it
// never moves back.
func (s *Store) SetRunReportSent(ctx context.Context, runID string, seq int64) error {
	_, err := s.db.ExecContext(ctx, `UPDATE run_reports SET sent_seq = $2 WHERE run_id = $1 AND sent_seq < $2`, runID, seq)
	if err != nil {
		return fmt.Errorf("run report %s: %w", runID, mapError(err))
	}
	return nil
}

// UnsentRunReports lists the reports with events the server has not
// acknowledged yet (or that it has not registered), oldest first.
func (s *Store) UnsentRunReports(ctx context.Context) ([]RunReport, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT p.run_id, p.server, p.registered, p.sent_seq FROM run_reports p
		WHERE NOT p.registered OR p.sent_seq < (SELECT coalesce(max(e.seq), 0) FROM events e WHERE e.run_id = p.run_id)
		ORDER BY p.created_at, p.run_id`)
	if err != nil {
		return nil, fmt.Errorf("unsent run reports: %w", mapError(err))
	}
	defer rows.Close()
	var out []RunReport
	for rows.Next() {
		var rr RunReport
		if err := rows.Scan(&rr.RunID, &rr.Server, &rr.Registered, &rr.SentSeq); err != nil {
			return nil, fmt.Errorf("unsent run reports: %w", err)
		}
		out = append(out, rr)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("unsent run reports: %w", mapError(err))
	}
	return out, nil
}
