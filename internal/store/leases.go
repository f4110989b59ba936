package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/opsbook/opsbook/internal/runbook"
)

// A lease says which process executes a run. The holder renews it (every
// ttl/3, say); it is free once released, once it expires, or at once when
// its owner is a process of this host that has died (see ProcessOwner). A
// run whose status is running or waiting and whose lease is not held by a
// live owner is interrupted: see RunOwnerAlive and OrphanedRuns.
//
// Expiry is judged by the clock of the process asking; hosts sharing a
// PostgreSQL store are assumed to keep their clocks within a small part of
// the ttl.

// Lease is one acquisition of a run. Its methods are safe for concurrent use.
type Lease struct {
	RunID string
	Owner string

	s     *Store
	token string
	ttl   time.Duration

	mu      sync.Mutex
	expires time.Time
}

// LockedError says who holds a run. It wraps ErrLocked.
type LockedError struct {
	RunID string
	Owner string
	Until time.Time
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("run %s is being executed by %s (lease until %s); wait for it to finish or stop that process, then resume",
		e.RunID, e.Owner, e.Until.Format(time.RFC3339))
}

func (e *LockedError) Unwrap() error { return ErrLocked }

// AcquireRun takes the run's lease for owner for ttl. It fails with a
// *LockedError (ErrLocked) while another live owner holds it — also when
// that owner has the same name: a lease is held once. An unknown run is
// ErrNotFound. Taking a free or dead owner's lease is one conditional
// statement, so of several racing processes exactly one wins.
func (s *Store) AcquireRun(ctx context.Context, runID, owner string, ttl time.Duration) (*Lease, error) {
	if ttl <= 0 {
		return nil, fmt.Errorf("acquire run %s: %w: lease ttl %v", runID, ErrInvalid, ttl)
	}
	if owner == "" {
		return nil, fmt.Errorf("acquire run %s: %w: empty owner", runID, ErrInvalid)
	}
	token := newToken()
	for range 5 {
		now := time.Now()
		expires := truncate(now.Add(ttl))
		l := &Lease{RunID: runID, Owner: owner, s: s, token: token, ttl: ttl, expires: expires}
		res, err := s.execAt(ctx, "NORMAL", `INSERT INTO run_leases (run_id, owner, token, acquired_at, expires_at)
			VALUES ($1, $2, $3, $4, $5) ON CONFLICT (run_id) DO NOTHING`,
			runID, owner, token, micros(now), micros(expires))
		if err != nil {
			return nil, fmt.Errorf("acquire run %s: %w", runID, mapError(err))
		}
		if n, err := res.RowsAffected(); err != nil {
			return nil, fmt.Errorf("acquire run %s: %w", runID, err)
		} else if n == 1 {
			return l, nil
		}

		held, err := s.lease(ctx, runID)
		if errors.Is(err, ErrNotFound) {
			continue // released meanwhile: insert again
		}
		if err != nil {
			return nil, fmt.Errorf("acquire run %s: %w", runID, err)
		}
		if held.alive(now) {
			return nil, &LockedError{RunID: runID, Owner: held.owner, Until: held.expires}
		}
		// Take over only the very lease found dead: if another process got
		// there first, its token differs and nothing changes.
		res, err = s.execAt(ctx, "NORMAL", `UPDATE run_leases SET owner = $2, token = $3, acquired_at = $4, expires_at = $5
			WHERE run_id = $1 AND token = $6`,
			runID, owner, token, micros(now), micros(expires), held.token)
		if err != nil {
			return nil, fmt.Errorf("acquire run %s: %w", runID, mapError(err))
		}
		if n, err := res.RowsAffected(); err != nil {
			return nil, fmt.Errorf("acquire run %s: %w", runID, err)
		} else if n == 1 {
			return l, nil
		}
	}
	return nil, fmt.Errorf("acquire run %s: %w: the lease kept changing hands; try again", runID, ErrLocked)
}

// Expires is when the lease runs out unless renewed.
func (l *Lease) Expires() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.expires
}

// Renew extends the lease by its ttl from now. ErrLocked means the lease
// was lost (it expired and another owner took the run): the holder must
// stop executing the run.
func (l *Lease) Renew(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	expires := truncate(time.Now().Add(l.ttl))
	res, err := l.s.execAt(ctx, "NORMAL", `UPDATE run_leases SET expires_at = $3 WHERE run_id = $1 AND token = $2`,
		l.RunID, l.token, micros(expires))
	if err != nil {
		return fmt.Errorf("renew lease of run %s: %w", l.RunID, mapError(err))
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("renew lease of run %s: %w", l.RunID, err)
	} else if n == 0 {
		return fmt.Errorf("renew lease of run %s: %w: the lease was lost to another owner; stop executing the run", l.RunID, ErrLocked)
	}
	l.expires = expires
	return nil
}

// Release gives the run up. Releasing a lease already lost or released is
// not an error.
func (l *Lease) Release(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, err := l.s.execAt(ctx, "NORMAL", `DELETE FROM run_leases WHERE run_id = $1 AND token = $2`, l.RunID, l.token)
	if err != nil {
		return fmt.Errorf("release lease of run %s: %w", l.RunID, mapError(err))
	}
	return nil
}

// RunOwnerAlive reports whether a live owner holds the run's lease: false
// when there is no lease, when it expired, or when its owner is a dead
// process of this host. A running run whose owner is not alive was
// interrupted (kill -9, power loss) and can be resumed.
func (s *Store) RunOwnerAlive(ctx context.Context, runID string) (bool, error) {
	held, err := s.lease(ctx, runID)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return held.alive(time.Now()), nil
}

// OrphanedRuns returns the runs that claim to be running or waiting but
// whose lease is not held by a live owner, newest first: their process
// died. The caller decides what to record (run.interrupted) and may resume
// them after acquiring their lease. A pending run is never orphaned: it may
// be queued.
func (s *Store) OrphanedRuns(ctx context.Context) ([]runbook.Run, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+prefixed("r.", runColumns)+`, l.owner, l.token, l.expires_at
		FROM runs r LEFT JOIN run_leases l ON l.run_id = r.id
		WHERE r.status IN ($1, $2)
		  AND NOT EXISTS (SELECT 1 FROM reported_runs p WHERE p.run_id = r.id) -- executed elsewhere, reported here
		ORDER BY r.created_at DESC, r.id DESC`,
		string(runbook.RunRunning), string(runbook.RunWaiting))
	if err != nil {
		return nil, fmt.Errorf("find interrupted runs: %w", mapError(err))
	}
	defer rows.Close()
	now := time.Now()
	runs := []runbook.Run{}
	for rows.Next() {
		var owner, token sql.NullString
		var expires sql.NullInt64
		var r runbook.Run
		r, err := scanRun(scanFunc(func(dest ...any) error {
			return rows.Scan(append(dest, &owner, &token, &expires)...)
		}))
		if err != nil {
			return nil, fmt.Errorf("find interrupted runs: %w", err)
		}
		held := heldLease{owner: owner.String, token: token.String, expires: fromMicros(expires.Int64)}
		if !owner.Valid || !held.alive(now) {
			runs = append(runs, r)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find interrupted runs: %w", mapError(err))
	}
	return runs, nil
}

type heldLease struct {
	owner   string
	token   string
	expires time.Time
}

func (h heldLease) alive(now time.Time) bool {
	return now.Before(h.expires) && !ownerDead(h.owner)
}

func (s *Store) lease(ctx context.Context, runID string) (heldLease, error) {
	var h heldLease
	var expires int64
	err := s.db.QueryRowContext(ctx, `SELECT owner, token, expires_at FROM run_leases WHERE run_id = $1`, runID).
		Scan(&h.owner, &h.token, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return heldLease{}, ErrNotFound
	}
	if err != nil {
		return heldLease{}, fmt.Errorf("read lease of run %s: %w", runID, mapError(err))
	}
	h.expires = fromMicros(expires)
	return h, nil
}

type scanFunc func(dest ...any) error

func (f scanFunc) Scan(dest ...any) error { return f(dest...) }

func newToken() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
