package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Snapshot is the frozen content of a runbook (its rollback document and
// the runbooks its call steps name) that runs refer to by hash.
type Snapshot struct {
	Hash           string           `json:"hash"`
	Runbook        string           `json:"runbook"`
	Source         []byte           `json:"-"`
	RollbackPath   string           `json:"rollback_path,omitempty"`
	RollbackSource []byte           `json:"-"`
	Called         []CalledDocument `json:"called,omitempty"`
	CreatedBy      string           `json:"created_by"`
	CreatedAt      time.Time        `json:"created_at"`
}

// CalledDocument is a runbook a call step names: Ref as the call block
// writes it, Path relative to the workspace.
type CalledDocument struct {
	Ref    string `json:"ref"`
	Path   string `json:"path"`
	Source []byte `json:"-"`
}

// calledColumn is the stored form of Snapshot.Called, sources included.
type calledColumn struct {
	Ref    string `json:"ref"`
	Path   string `json:"path"`
	Source []byte `json:"source"`
}

// Publication says which snapshot of a runbook is published.
type Publication struct {
	Runbook     string    `json:"runbook"`
	Hash        string    `json:"hash"`
	PublishedBy string    `json:"published_by"`
	PublishedAt time.Time `json:"published_at"`
}

// PutSnapshot stores a snapshot; storing the same hash again keeps the
// first (content-addressed, so it is the same content).
func (s *Store) PutSnapshot(ctx context.Context, sn Snapshot) error {
	if sn.CreatedAt.IsZero() {
		sn.CreatedAt = time.Now()
	}
	rb := sn.RollbackSource
	if rb == nil {
		rb = []byte{}
	}
	called := ""
	if len(sn.Called) > 0 {
		cols := make([]calledColumn, len(sn.Called))
		for i, c := range sn.Called {
			cols[i] = calledColumn(c)
		}
		b, err := json.Marshal(cols)
		if err != nil {
			return fmt.Errorf("store snapshot %s: %w", sn.Hash, err)
		}
		called = string(b)
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO snapshots (hash, runbook, source, rollback_path, rollback_source, called, created_by, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (hash) DO NOTHING`,
		sn.Hash, sn.Runbook, sn.Source, sn.RollbackPath, rb, called, sn.CreatedBy, micros(sn.CreatedAt))
	if err != nil {
		return fmt.Errorf("store snapshot %s: %w", sn.Hash, mapError(err))
	}
	return nil
}

// GetSnapshot returns a snapshot with its content.
func (s *Store) GetSnapshot(ctx context.Context, hash string) (Snapshot, error) {
	var sn Snapshot
	var at int64
	var called string
	err := s.db.QueryRowContext(ctx, `SELECT hash, runbook, source, rollback_path, rollback_source, called, created_by, created_at
		FROM snapshots WHERE hash = $1`, hash).Scan(&sn.Hash, &sn.Runbook, &sn.Source, &sn.RollbackPath, &sn.RollbackSource, &called, &sn.CreatedBy, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return Snapshot{}, fmt.Errorf("snapshot %s: %w", hash, ErrNotFound)
	}
	if err != nil {
		return Snapshot{}, fmt.Errorf("get snapshot %s: %w", hash, mapError(err))
	}
	if called != "" {
		var cols []calledColumn
		if err := json.Unmarshal([]byte(called), &cols); err != nil {
			return Snapshot{}, fmt.Errorf("snapshot %s: its called runbooks are unreadable: %w", hash, err)
		}
		for _, c := range cols {
			sn.Called = append(sn.Called, CalledDocument(c))
		}
	}
	sn.CreatedAt = fromMicros(at)
	return sn, nil
}

// ListSnapshots lists a runbook's stored snapshots, newest first, at most
// limit (all when limit ≤ 0), without their sources.
func (s *Store) ListSnapshots(ctx context.Context, runbookPath string, limit int) ([]Snapshot, error) {
	q := `SELECT hash, runbook, rollback_path, created_by, created_at FROM snapshots WHERE runbook = $1 ORDER BY created_at DESC, hash`
	args := []any{runbookPath}
	if limit > 0 {
		q += ` LIMIT $2`
		args = append(args, limit)
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list snapshots of %s: %w", runbookPath, mapError(err))
	}
	defer rows.Close()
	var out []Snapshot
	for rows.Next() {
		var sn Snapshot
		var at int64
		if err := rows.Scan(&sn.Hash, &sn.Runbook, &sn.RollbackPath, &sn.CreatedBy, &at); err != nil {
			return nil, fmt.Errorf("list snapshots of %s: %w", runbookPath, mapError(err))
		}
		sn.CreatedAt = fromMicros(at)
		out = append(out, sn)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list snapshots of %s: %w", runbookPath, mapError(err))
	}
	return out, nil
}

// Publish makes hash the published snapshot of its runbook.
func (s *Store) Publish(ctx context.Context, p Publication) error {
	if p.PublishedAt.IsZero() {
		p.PublishedAt = time.Now()
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO published_snapshots (runbook, hash, published_by, published_at)
		VALUES ($1, $2, $3, $4) ON CONFLICT (runbook) DO UPDATE SET hash = excluded.hash,
			published_by = excluded.published_by, published_at = excluded.published_at`,
		p.Runbook, p.Hash, p.PublishedBy, micros(p.PublishedAt))
	if err != nil {
		return fmt.Errorf("publish snapshot %s of %s: %w", p.Hash, p.Runbook, mapError(err))
	}
	return nil
}

// Published returns the runbook's published snapshot, ErrNotFound if none.
func (s *Store) Published(ctx context.Context, runbookPath string) (Publication, error) {
	var p Publication
	var at int64
	err := s.db.QueryRowContext(ctx, `SELECT runbook, hash, published_by, published_at FROM published_snapshots WHERE runbook = $1`,
		runbookPath).Scan(&p.Runbook, &p.Hash, &p.PublishedBy, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return Publication{}, fmt.Errorf("runbook %s has no published snapshot: %w", runbookPath, ErrNotFound)
	}
	if err != nil {
		return Publication{}, fmt.Errorf("published snapshot of %s: %w", runbookPath, mapError(err))
	}
	p.PublishedAt = fromMicros(at)
	return p, nil
}
