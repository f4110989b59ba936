package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// The run queue and the nodes. A run accepted by any server node is a row
// of run_queue before the request returns; whichever node has a free
// worker claims it (on PostgreSQL with FOR UPDATE SKIP LOCKED, so nodes
// never wait on each other's claims) and executes it under the run's lease
// (AcquireRun), which alone decides who executes. A claim is only a
// reservation: it is dropped when its node's lease (a nodes row renewed by
// HeartbeatNode) is no longer alive, and the run is claimed again.

// Node is a server process sharing the store.
type Node struct {
	ID        string
	Addr      string
	StartedAt time.Time
	Expires   time.Time
	Alive     bool
}

// HeartbeatNode records that node id (a ProcessOwner) serves at addr for
// another ttl.
func (s *Store) HeartbeatNode(ctx context.Context, id, addr string, ttl time.Duration) error {
	now := time.Now()
	_, err := s.db.ExecContext(ctx, `INSERT INTO nodes (id, addr, started_at, expires_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (id) DO UPDATE SET addr = excluded.addr, expires_at = excluded.expires_at`,
		id, addr, micros(now), micros(truncate(now.Add(ttl))))
	if err != nil {
		return fmt.Errorf("renew lease of node %s: %w", id, mapError(err))
	}
	return nil
}

// RemoveNode deletes a node's row: it stops serving (graceful shutdown).
func (s *Store) RemoveNode(ctx context.Context, id string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM nodes WHERE id = $1`, id); err != nil {
		return fmt.Errorf("remove node %s: %w", id, mapError(err))
	}
	return nil
}

// Nodes lists the nodes known, alive or not (dead ones stay until
// PruneNodes), oldest first.
func (s *Store) Nodes(ctx context.Context) ([]Node, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, addr, started_at, expires_at FROM nodes ORDER BY started_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", mapError(err))
	}
	defer rows.Close()
	now := time.Now()
	var nodes []Node
	for rows.Next() {
		var n Node
		var started, expires int64
		if err := rows.Scan(&n.ID, &n.Addr, &started, &expires); err != nil {
			return nil, fmt.Errorf("list nodes: %w", err)
		}
		n.StartedAt, n.Expires = fromMicros(started), fromMicros(expires)
		n.Alive = heldLease{owner: n.ID, expires: n.Expires}.alive(now)
		nodes = append(nodes, n)
	}
	return nodes, rows.Err()
}

// PruneNodes deletes nodes dead for longer than after.
func (s *Store) PruneNodes(ctx context.Context, after time.Duration) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM nodes WHERE expires_at < $1`, micros(time.Now().Add(-after)))
	if err != nil {
		return fmt.Errorf("prune nodes: %w", mapError(err))
	}
	return nil
}

// QueuedRun is a run waiting for, or reserved by, a node's worker.
type QueuedRun struct {
	RunID string
	// Actor executes the run: who started it, or who asked to resume it.
	Actor string
	// RetryInterrupted answers "re-run the interrupted step?" on resume.
	RetryInterrupted string
	EnqueuedAt       time.Time
	Node             string // the claiming node; "" while waiting
}

// Enqueue adds a run to the queue. It reports false when the run is
// queued already (the queued request stands).
func (s *Store) Enqueue(ctx context.Context, q QueuedRun) (bool, error) {
	now := time.Now()
	res, err := s.db.ExecContext(ctx, `INSERT INTO run_queue (run_id, actor, retry_interrupted, enqueued_at, not_before)
		VALUES ($1, $2, $3, $4, $4) ON CONFLICT (run_id) DO NOTHING`, q.RunID, q.Actor, q.RetryInterrupted, micros(now))
	if err != nil {
		return false, fmt.Errorf("queue run %s: %w", q.RunID, mapError(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("queue run %s: %w", q.RunID, err)
	}
	return n == 1, nil
}

// ClaimQueued reserves up to n waiting runs, oldest first, for node. On
// PostgreSQL rows another node is claiming are skipped, not waited for.
func (s *Store) ClaimQueued(ctx context.Context, node string, n int) ([]QueuedRun, error) {
	if n <= 0 {
		return nil, nil
	}
	lock := ""
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("claim queued runs: %w", mapError(err))
	}
	defer tx.Rollback()
	if s.dialect == DialectPostgres {
		lock = " FOR UPDATE SKIP LOCKED"
		// A claim lost to a crash is harmless (the node that made it is
		// dead, so the run is claimed again): no need to wait for the disk.
		if _, err := tx.ExecContext(ctx, `SET LOCAL synchronous_commit TO OFF`); err != nil {
			return nil, fmt.Errorf("claim queued runs: %w", mapError(err))
		}
	}
	now := micros(time.Now())
	rows, err := tx.QueryContext(ctx, `UPDATE run_queue SET node = $1, claimed_at = $2 WHERE run_id IN (
		SELECT run_id FROM run_queue WHERE node IS NULL AND not_before <= $2 ORDER BY enqueued_at, run_id LIMIT $3`+lock+`)
		RETURNING run_id, actor, retry_interrupted, enqueued_at`, node, now, n)
	if err != nil {
		return nil, fmt.Errorf("claim queued runs: %w", mapError(err))
	}
	defer rows.Close()
	var claimed []QueuedRun
	for rows.Next() {
		q := QueuedRun{Node: node}
		var at int64
		if err := rows.Scan(&q.RunID, &q.Actor, &q.RetryInterrupted, &at); err != nil {
			return nil, fmt.Errorf("claim queued runs: %w", err)
		}
		q.EnqueuedAt = fromMicros(at)
		claimed = append(claimed, q)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("claim queued runs: %w", mapError(err))
	}
	rows.Close()
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("claim queued runs: %w", mapError(err))
	}
	return claimed, nil
}

// Unclaim puts a run node reserved back in the queue, to be claimed again
// not before notBefore (another process still holds its lease).
func (s *Store) Unclaim(ctx context.Context, runID, node string, notBefore time.Time) error {
	_, err := s.db.ExecContext(ctx, `UPDATE run_queue SET node = NULL, claimed_at = NULL, not_before = $3
		WHERE run_id = $1 AND node = $2`, runID, node, micros(notBefore))
	if err != nil {
		return fmt.Errorf("unclaim run %s: %w", runID, mapError(err))
	}
	return nil
}

// Dequeue removes a run from the queue: its execution by node ended.
func (s *Store) Dequeue(ctx context.Context, runID, node string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM run_queue WHERE run_id = $1 AND node = $2`, runID, node)
	if err != nil {
		return fmt.Errorf("dequeue run %s: %w", runID, mapError(err))
	}
	return nil
}

// Queued returns the queue entry of a run; ErrNotFound when it has none.
func (s *Store) Queued(ctx context.Context, runID string) (QueuedRun, error) {
	q := QueuedRun{RunID: runID}
	var at int64
	var node sql.NullString
	err := s.db.QueryRowContext(ctx, `SELECT actor, retry_interrupted, enqueued_at, node FROM run_queue WHERE run_id = $1`, runID).
		Scan(&q.Actor, &q.RetryInterrupted, &at, &node)
	if errors.Is(err, sql.ErrNoRows) {
		return q, ErrNotFound
	}
	if err != nil {
		return q, fmt.Errorf("read queue entry of run %s: %w", runID, mapError(err))
	}
	q.EnqueuedAt, q.Node = fromMicros(at), node.String
	return q, nil
}

// QueueDepth is how many runs wait unclaimed.
func (s *Store) QueueDepth(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM run_queue WHERE node IS NULL`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count queued runs: %w", mapError(err))
	}
	return n, nil
}

// ReleaseDeadClaims drops the claims of nodes whose lease is not alive (a
// node killed between claiming a run and taking its lease, or one that
// shut down with runs still executing), so live nodes claim them again. It
// returns how many runs it put back.
func (s *Store) ReleaseDeadClaims(ctx context.Context) (int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT q.node, n.expires_at FROM run_queue q LEFT JOIN nodes n ON n.id = q.node
		WHERE q.node IS NOT NULL`)
	if err != nil {
		return 0, fmt.Errorf("find claims of dead nodes: %w", mapError(err))
	}
	now := time.Now()
	var dead []string
	for rows.Next() {
		var node string
		var expires sql.NullInt64
		if err := rows.Scan(&node, &expires); err != nil {
			rows.Close()
			return 0, fmt.Errorf("find claims of dead nodes: %w", err)
		}
		if !expires.Valid || !(heldLease{owner: node, expires: fromMicros(expires.Int64)}).alive(now) {
			dead = append(dead, node)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("find claims of dead nodes: %w", mapError(err))
	}
	total := 0
	for _, node := range dead {
		res, err := s.db.ExecContext(ctx, `UPDATE run_queue SET node = NULL, claimed_at = NULL WHERE node = $1`, node)
		if err != nil {
			return total, fmt.Errorf("release claims of node %s: %w", node, mapError(err))
		}
		n, _ := res.RowsAffected()
		total += int(n)
	}
	return total, nil
}

// UnqueuedPendingRuns returns pending runs created before olderThan that
// are in no queue and whose lease no live owner holds: accepted by a node
// that died before queueing them.
func (s *Store) UnqueuedPendingRuns(ctx context.Context, olderThan time.Time) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT r.id FROM runs r
		WHERE r.status = 'pending' AND r.created_at < $1
		  AND NOT EXISTS (SELECT 1 FROM run_queue q WHERE q.run_id = r.id)
		  AND NOT EXISTS (SELECT 1 FROM reported_runs p WHERE p.run_id = r.id)
		ORDER BY r.created_at`, micros(olderThan))
	if err != nil {
		return nil, fmt.Errorf("find unqueued pending runs: %w", mapError(err))
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find unqueued pending runs: %w", mapError(err))
	}
	var out []string
	for _, id := range ids {
		if alive, err := s.RunOwnerAlive(ctx, id); err == nil && !alive {
			out = append(out, id)
		}
	}
	return out, nil
}
