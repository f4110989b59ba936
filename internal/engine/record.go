package engine

import (
	"context"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/opsbook/opsbook/internal/mask"
	"github.com/opsbook/opsbook/internal/runbook"
)

// recorder turns a command's output into step.output events as it
// streams: masked, cut into chunks of at most ChunkSize bytes, written at
// least every FlushInterval, several chunks per store write when output is
// fast. At most MaxPending bytes wait in memory; beyond that the command's
// writes block (and so the command) until the store catches up.
type recorder struct {
	r     *runner
	base  runbook.Event
	match *matcher

	stdout, stderr io.Writer
	masks          *mask.Streams // both streams masked as one: a secret split across them is found

	mu      sync.Mutex
	cond    *sync.Cond
	cur     [2]strings.Builder // partial chunk per stream: its text becomes the event's without a copy
	pending []runbook.Event
	bytes   int // in cur and pending
	err     error
	closing bool
	// flushing says flushLoop runs: it starts with the first output, so a
	// command that prints nothing (most steps) costs no goroutine, ticker
	// or wake-up for it.
	flushing bool
	kick     chan struct{}
	done     chan struct{}
}

var streamNames = [2]string{"stdout", "stderr"}

// flushBatch bounds the output one store write of the recorder carries.
const flushBatch = 1 << 20

func (r *runner) newRecorder(phase string, step *runbook.Step, host string, attempt int, kind string, match *matcher) *recorder {
	base := r.stepEvent(runbook.EventStepOutput, phase, step, host, attempt)
	if kind != "action" {
		if base.Data == nil {
			base.Data = map[string]string{}
		}
		base.Data["block"] = kind
	}
	rec := &recorder{r: r, base: base, match: match, kick: make(chan struct{}, 1), done: make(chan struct{})}
	rec.cond = sync.NewCond(&rec.mu)
	rec.masks = r.mask.Streams(streamWriter{rec, 0}, streamWriter{rec, 1})
	rec.stdout = tap{rec.masks.Writer(0), match}
	rec.stderr = tap{rec.masks.Writer(1), match}
	return rec
}

// tap feeds the expect matcher the raw output before masking.
type tap struct {
	w     io.Writer
	match *matcher
}

func (t tap) Write(p []byte) (int, error) {
	if t.match != nil {
		t.match.Write(p)
	}
	return t.w.Write(p)
}

type streamWriter struct {
	rec    *recorder
	stream int
}

func (s streamWriter) Write(p []byte) (int, error) {
	rec := s.rec
	chunk := rec.r.e.cfg.ChunkSize
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if !rec.flushing && len(p) > 0 {
		rec.flushing = true
		go rec.flushLoop()
	}
	n := len(p)
	for len(p) > 0 {
		for rec.bytes >= rec.r.e.cfg.MaxPending && rec.err == nil {
			rec.cond.Wait()
		}
		if rec.err != nil {
			return 0, rec.err
		}
		cur := &rec.cur[s.stream]
		take := min(chunk-cur.Len(), len(p))
		if cur.Cap() == 0 && len(p) >= chunk/8 {
			// Output pouring in fills the chunk: room for all of it at
			// once, not a series of copies as it grows.
			cur.Grow(chunk)
		}
		cur.Write(p[:take])
		p = p[take:]
		rec.bytes += take
		if cur.Len() == chunk {
			rec.pending = append(rec.pending, rec.event(s.stream, cur))
			rec.signal()
		}
	}
	return n, nil
}

// event takes the text of a stream's chunk, leaving the chunk empty.
func (rec *recorder) event(stream int, cur *strings.Builder) runbook.Event {
	ev := rec.base
	ev.Stream = streamNames[stream]
	ev.Text = cur.String()
	if cur.Cap() > 2*cur.Len() {
		// A partial chunk of one grown for a full one: the event is kept
		// (pending, in the views) and should not hold the unused room.
		ev.Text = strings.Clone(ev.Text)
	}
	cur.Reset()
	return ev
}

func (rec *recorder) signal() {
	select {
	case rec.kick <- struct{}{}:
	default:
	}
}

// flushLoop writes pending chunks as soon as there are some, and partial
// chunks every FlushInterval.
func (rec *recorder) flushLoop() {
	defer close(rec.done)
	t := time.NewTicker(rec.r.e.cfg.FlushInterval)
	defer t.Stop()
	for {
		partial := false
		select {
		case <-rec.kick:
		case <-t.C:
			partial = true
		}
		if last := rec.flush(partial); last {
			return
		}
	}
}

// flush writes what is pending (and the partial chunks when asked) in one
// store write. It reports whether the recorder is closed and drained.
func (rec *recorder) flush(partial bool) bool {
	rec.mu.Lock()
	closing := rec.closing
	if partial || closing {
		for i := range 2 {
			if rec.cur[i].Len() > 0 {
				rec.pending = append(rec.pending, rec.event(i, &rec.cur[i]))
			}
		}
	}
	// At most flushBatch per write: while it is written, the command's
	// next output is cut into chunks (MaxPending leaves room for both).
	k, n := 0, 0
	for k < len(rec.pending) && (k == 0 || n+len(rec.pending[k].Text) <= flushBatch) {
		n += len(rec.pending[k].Text)
		k++
	}
	batch := rec.pending[:k:k]
	rec.pending = slices.Clone(rec.pending[k:])
	if len(rec.pending) > 0 {
		rec.signal()
	}
	rec.mu.Unlock()
	var err error
	if len(batch) > 0 {
		err = rec.r.appendMasked(context.Background(), batch...)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.bytes -= n
	if err != nil && rec.err == nil {
		rec.err = err
	}
	rec.cond.Broadcast()
	return closing && len(rec.pending) == 0 && rec.cur[0].Len() == 0 && rec.cur[1].Len() == 0
}

// close flushes everything and reports a recording failure.
func (rec *recorder) close() error {
	rec.masks.Close()
	rec.mu.Lock()
	rec.closing = true
	flushing := rec.flushing
	rec.mu.Unlock()
	if flushing {
		rec.signal()
		<-rec.done
	}
	// Without flushLoop nothing was written: nothing is pending.
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.err
}
