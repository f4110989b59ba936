package store

import (
	"context"
	"database/sql"
)

// checkpointAfter is how much step output, appended on SQLite, wakes the
// background checkpointer.
const checkpointAfter = 4 << 20

// checkpointer copies the write-ahead log into the database file in the
// background while output pours in. SQLite otherwise does it in the
// appending connection once the log reaches wal_autocheckpoint pages:
// the recorder of a step printing fast would stop, every 16 MiB, to copy
// the log and fsync both files, and spend a third of its time waiting for
// the disk (256 MiB of output is 512 MiB written). Here the copy and the
// fsyncs overlap the next appends. The appender's own autocheckpoint stays
// as the bound on the log's size: when the log keeps growing (the
// background copy never finds it at rest), the appender checkpoints what
// little is left and the log starts over.
//
// Checkpoints move committed pages from one file to the other: what is
// durable, and when, is unchanged (see sqlitePragmas).
type checkpointer struct {
	kick chan struct{}
	done chan struct{}
	owed int // output bytes appended since the last kick; guarded by Store.appendMu
}

// noteOutput counts output appended on SQLite and wakes the checkpointer
// (started by the first output) every checkpointAfter bytes. The caller
// holds appendMu.
func (s *Store) noteOutput(n int) {
	if s.appendDB == nil || n == 0 {
		return
	}
	if s.ckpt == nil {
		s.ckpt = &checkpointer{kick: make(chan struct{}, 1), done: make(chan struct{})}
		go s.ckpt.run(s.db)
	}
	s.ckpt.owed += n
	if s.ckpt.owed >= checkpointAfter {
		s.ckpt.owed = 0
		select {
		case s.ckpt.kick <- struct{}{}:
		default: // one is running or due: it copies this output too
		}
	}
}

func (c *checkpointer) run(db *sql.DB) {
	defer close(c.done)
	for range c.kick {
		// PASSIVE neither waits for nor blocks readers and the appender.
		// A failure leaves the log to the appender's autocheckpoint.
		db.ExecContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)")
	}
}

// stop ends the checkpointer after a checkpoint under way.
func (c *checkpointer) stop() {
	close(c.kick)
	<-c.done
}
