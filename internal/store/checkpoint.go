package store

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"
	"time"
)

// checkpointAfter is how much step output, appended on SQLite, wakes the
// background checkpointer; every checkpointBound of it the appender
// checkpoints itself.
const (
	checkpointAfter = 4 << 20
	checkpointBound = 32 << 20
)

// checkpointer copies the write-ahead log into the database file in the
// background while output pours in. SQLite otherwise does it in the
// appending connection once the log reaches wal_autocheckpoint pages:
// the recorder of a step printing fast would stop, every 16 MiB, to copy
// the log and fsync both files, and spend a third of its time waiting for
// the disk (256 MiB of output is 512 MiB written). Here the copy and the
// fsyncs overlap the next appends.
//
// The log starts over only when a write begins with all of it copied,
// which appends racing a background copy seldom see; and the appender's
// own autocheckpoint gives up when the background one holds the lock. So
// every checkpointBound of output the appender waits for the background
// copy and checkpoints what is left itself: with its appends held, that
// copies all of it (unless a reader still needs older pages), and the next
// append starts the log over.
//
// Checkpoints move committed pages from one file to the other: what is
// durable, and when, is unchanged (see sqlitePragmas).
type checkpointer struct {
	kick chan struct{}
	done chan struct{}
	mu   sync.Mutex // held by a checkpoint, in the background or the appender's
	due  int        // output since the appender last checkpointed; guarded by Store.appendMu
}

// checkpointDelay lengthens every background checkpoint (tests: a slow
// disk); a time.Duration.
var checkpointDelay atomic.Int64

// noteOutput counts output appended on SQLite through dc, the append
// connection, and checkpoints as above. The caller holds appendMu.
func (s *Store) noteOutput(dc *sql.Conn, n int) {
	if s.appendDB == nil || n == 0 {
		return
	}
	c := s.ckpt
	if c == nil {
		c = &checkpointer{kick: make(chan struct{}, 1), done: make(chan struct{})}
		s.ckpt = c
		go c.run(s.db)
	}
	c.due += n
	if c.due >= checkpointBound {
		c.due = 0
		c.mu.Lock()
		// A failure leaves the log to the autocheckpoint, as before.
		dc.ExecContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)")
		c.mu.Unlock()
		return
	}
	if c.due/checkpointAfter != (c.due-n)/checkpointAfter { // another checkpointAfter
		select {
		case c.kick <- struct{}{}:
		default: // one is running or due: it copies this output too
		}
	}
}

func (c *checkpointer) run(db *sql.DB) {
	defer close(c.done)
	for range c.kick {
		c.mu.Lock()
		// PASSIVE neither waits for nor blocks readers and the appender.
		// A failure leaves the log to the appender.
		db.ExecContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)")
		time.Sleep(time.Duration(checkpointDelay.Load()))
		c.mu.Unlock()
	}
}

// stop ends the checkpointer after a checkpoint under way.
func (c *checkpointer) stop() {
	close(c.kick)
	<-c.done
}
