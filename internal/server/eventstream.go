package server

import (
	"io"
	"net/http"
	"time"

	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/runbook"
)

// keepAliveAfter is how long a stream may stay silent before it sends a
// comment line: proxies close connections that say nothing.
const keepAliveAfter = 15 * time.Second

// EventStream is a server-sent-event response that follows one run (the
// JSON API's event stream and the web UI's live run page) or every run
// (the overview). Writes go to W; Flush sends them.
type EventStream struct {
	W         http.ResponseWriter
	s         *Server
	r         *http.Request
	may       func(*auth.Principal) bool // whether the caller may still follow
	principal *auth.Principal            // as last authenticated
	checked   time.Time
	rc        *http.ResponseController
	notify    <-chan struct{}
	stop      func()
	poll      *time.Ticker
	lastWrite time.Time
}

// recheckEvery is how often a stream re-checks that its caller may still
// see the run: a user disabled, signed out or stripped of the grant stops
// receiving within about this long.
const recheckEvery = time.Second

// StreamRun starts an event-stream response for the run r is about and
// subscribes to its updates. Close releases the subscription. Before each
// batch after the first (see Wait) the caller is authenticated again from
// r's credentials and must still hold RunbookView on the run.
func (s *Server) StreamRun(w http.ResponseWriter, r *http.Request, run runbook.Run) *EventStream {
	scope := auth.Scope{Project: s.Catalog().ProjectOf(run.Runbook), Environment: run.Environment}
	notify, stop := s.Subscribe(run.ID)
	return s.stream(w, r, notify, stop, time.Second, func(p *auth.Principal) bool { return p.Can(auth.RunbookView, scope) })
}

// StreamAll starts an event-stream response that follows every run: it
// wakes on any run's news, and every pollEvery anyway (runs written by
// other processes, ages that grow). Before each batch after the first
// the caller is authenticated again and must still view some runbook;
// Principal is then the fresh identity, so what the caller may see is
// decided again for every batch: a grant taken away hides its runs from
// the next batch on.
func (s *Server) StreamAll(w http.ResponseWriter, r *http.Request, pollEvery time.Duration) *EventStream {
	notify, stop := s.SubscribeAll()
	return s.stream(w, r, notify, stop, pollEvery, func(p *auth.Principal) bool { return p.CanSomewhere(auth.RunbookView) })
}

func (s *Server) stream(w http.ResponseWriter, r *http.Request, notify <-chan struct{}, stop func(), pollEvery time.Duration, may func(*auth.Principal) bool) *EventStream {
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // a stream outlives the server's write timeout
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	return &EventStream{
		W: w, rc: rc, notify: notify, stop: stop, s: s, r: r, checked: time.Now(),
		may: may, principal: auth.FromContext(r.Context()),
		poll:      time.NewTicker(pollEvery), // events written by other processes
		lastWrite: time.Now(),
	}
}

// Principal is the caller as last authenticated (at the start, then at
// most every recheckEvery).
func (es *EventStream) Principal() *auth.Principal { return es.principal }

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
	return es.allowed()
}

// allowed re-authenticates the stream's caller (at most every
// recheckEvery) and reports whether they may still see the run.
func (es *EventStream) allowed() bool {
	if time.Since(es.checked) < recheckEvery {
		return true
	}
	es.checked = time.Now()
	p, err := es.s.authenticate(es.r)
	if err != nil || p == nil || !es.may(p) {
		io.WriteString(es.W, "event: end\ndata: {\"reason\":\"access revoked\"}\n\n")
		es.Flush()
		return false
	}
	es.principal = p
	return true
}
