package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Notification channels (PostgreSQL). The database raises them itself
// (triggers of migration 00311), so every writer — any server node, a CLI
// reporting to the store, a decision — is heard.
const (
	// ChannelEvents carries the id of a run whose log grew.
	ChannelEvents = "opsbook_events"
	// ChannelQueue says a run was queued or put back in the queue.
	ChannelQueue = "opsbook_queue"
	// ChannelCancel asks the node executing a run to cancel it (payload:
	// JSON of the run id, actor and reason; see Notify).
	ChannelCancel = "opsbook_cancel"
)

// Notify sends payload on channel to every listening process
// (PostgreSQL); errors.ErrUnsupported on SQLite.
func (s *Store) Notify(ctx context.Context, channel, payload string) error {
	if s.dialect != DialectPostgres {
		return errors.ErrUnsupported
	}
	if _, err := s.db.ExecContext(ctx, `SELECT pg_notify($1, $2)`, channel, payload); err != nil {
		return fmt.Errorf("notify %s: %w", channel, mapError(err))
	}
	return nil
}

// Listen receives PostgreSQL notifications on channels and calls fn for
// each, from one goroutine, until ctx ends. After every (re)connection it
// calls fn("", "") first: notifications sent while it was not connected
// are lost, so the caller catches up from the store then. A lost
// connection is retried every second. On SQLite (one process) it returns
// errors.ErrUnsupported at once.
func (s *Store) Listen(ctx context.Context, fn func(channel, payload string), channels ...string) error {
	if s.dialect != DialectPostgres {
		return errors.ErrUnsupported
	}
	for {
		err := s.listenOnce(ctx, fn, channels)
		if ctx.Err() != nil {
			return nil
		}
		_ = err // retried; the caller's store calls report the outage
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}

func (s *Store) listenOnce(ctx context.Context, fn func(channel, payload string), channels []string) error {
	conn, err := pgx.Connect(ctx, s.dsn)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, ch := range channels {
		if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			return fmt.Errorf("listen on %s: %w", ch, err)
		}
	}
	fn("", "")
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return fmt.Errorf("listen: %w", err)
		}
		fn(n.Channel, n.Payload)
	}
}
