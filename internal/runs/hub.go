package runs

import "sync"

// hub wakes live-event streams when a run's log grows: in this process
// (the engine's observer) or, on PostgreSQL, anywhere (the store's
// notifications, see Service.listen). Streams also poll the store, as a
// safety net. A subscription to allRuns hears of every run (the
// overview).
type hub struct {
	mu   sync.Mutex
	subs map[string]map[chan struct{}]struct{}
}

// allRuns is the subscription key that every run's news wakes.
const allRuns = ""

func newHub() *hub { return &hub{subs: map[string]map[chan struct{}]struct{}{}} }

// subscribe returns a channel signalled (without blocking, coalesced) when
// the run has news, and a function to stop.
func (h *hub) subscribe(runID string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	h.mu.Lock()
	if h.subs[runID] == nil {
		h.subs[runID] = map[chan struct{}]struct{}{}
	}
	h.subs[runID][ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		delete(h.subs[runID], ch)
		if len(h.subs[runID]) == 0 {
			delete(h.subs, runID)
		}
		h.mu.Unlock()
	}
}

func (h *hub) notify(runID string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, key := range []string{runID, allRuns} {
		for ch := range h.subs[key] {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
}

// notifyAll wakes every stream: notifications may have been missed.
func (h *hub) notifyAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, subs := range h.subs {
		for ch := range subs {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
}
