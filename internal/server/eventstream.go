package server

import (
	"io"
	"net/http"
	"time"
)

// keepAliveAfter is how long a stream may stay silent before it sends a
// comment line: proxies close connections that say nothing.
const keepAliveAfter = 15 * time.Second

// EventStream is a server-sent-event response that follows one run: the
// JSON API's event stream and the web UI's live run page both pace
// themselves with it. Writes go to W; Flush sends them.
type EventStream struct {
	W         http.ResponseWriter
	rc        *http.ResponseController
	notify    <-chan struct{}
	stop      func()
	poll      *time.Ticker
	lastWrite time.Time
}

// StreamRun starts an event-stream response for a run and subscribes to its
// updates. Close releases the subscription.
func (s *Server) StreamRun(w http.ResponseWriter, runID string) *EventStream {
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // a stream outlives the server's write timeout
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	notify, stop := s.Subscribe(runID)
	return &EventStream{
		W: w, rc: rc, notify: notify, stop: stop,
		poll:      time.NewTicker(time.Second), // events written by other processes
		lastWrite: time.Now(),
	}
}

// Close ends the subscription.
func (es *EventStream) Close() {
	es.stop()
	es.poll.Stop()
}

// Flush sends what was written. False means the client has gone.
func (es *EventStream) Flush() bool {
	es.lastWrite = time.Now()
	return es.rc.Flush() == nil
}

// Wait keeps a silent stream alive, then waits for the run's next update,
// the next poll, or the end of the request. False means the stream is over.
func (es *EventStream) Wait(done <-chan struct{}) bool {
	if time.Since(es.lastWrite) > keepAliveAfter {
		io.WriteString(es.W, ": keep-alive\n\n")
		if !es.Flush() {
			return false
		}
	}
	select {
	case <-done:
		return false
	case <-es.notify:
	case <-es.poll.C:
	}
	return true
}
