package ui

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/opsbook/opsbook/internal/auth"
)

func (h *handlers) registerLive() {
	h.s.Handle("GET /runs/{id}/live", auth.Need(auth.RunbookView, h.scopeRun), "UI: a run's log size, timeline and panel as server-sent events", h.live)
	h.s.Handle("GET /runs/{id}/log", auth.Need(auth.RunbookView, h.scopeRun), "UI: a run's whole log as text, with step markers, times and streams", h.logText)
}

// live streams the run page's updates as server-sent events for the htmx
// SSE extension: "log" tells the log viewer how many rows the log has now
// (JSON; the viewer fetches the rows it shows), "timeline" and "panel"
// replace those parts when the run's state changes, and "end" closes the
// stream once the run is finished and everything was sent. Event ids are
// log sequence numbers, so a reconnecting browser resumes where it left
// off; the panel carries the sequence number of the state it shows, so
// the page never replaces a newer panel by an older one.
func (h *handlers) live(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	st := h.s.Store()
	p := principal(r)
	run, err := st.GetRun(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	es := h.s.StreamRun(w, r, run)
	defer es.Close()

	docSteps := h.snapshotSteps(ctx, run) // a snapshot never changes
	pg := h.newPage(r, run.Title, "overview", nil)
	lastPanel, lastTimeline, lastLines, lastSeq := "", "", -1, int64(-1)
	for {
		finished := false
		if cur, err := st.GetRun(ctx, run.ID); err == nil {
			run = cur
		}
		// The log index reads each event once for every viewer of the run.
		v, lines, seq, err := h.liveView(ctx, p, run, docSteps)
		if err != nil {
			return nil // the client reconnects
		}
		if last, err := st.LastSeq(ctx, run.ID); err == nil && run.Status.Finished() && last <= seq {
			finished = true
		}
		if lines != lastLines || seq != lastSeq || finished {
			lastLines, lastSeq = lines, seq
			sse(w, "log", seq, fmt.Sprintf(`{"lines":%d,"seq":%d,"finished":%v}`, lines, seq, finished))
			pg.Data = v
			if s, err := h.fragment("run", "timeline", pg); err == nil && s != lastTimeline {
				lastTimeline = s
				sse(w, "timeline", 0, s)
			}
			if sig := panelSignature(v); sig != lastPanel {
				lastPanel = sig
				if s, err := h.fragment("run", "panel", pg); err == nil {
					sse(w, "panel", 0, s)
				}
			}
		}
		if finished {
			sse(w, "end", 0, string(run.Status))
			es.Flush()
			return nil
		}
		if !es.Flush() {
			return nil
		}
		if !es.Wait(ctx.Done()) {
			return nil
		}
	}
}

// panelSignature changes exactly when the action panel would look
// different, so a reason being typed is not wiped by unrelated updates.
func panelSignature(v *runView) string {
	w := v.State.Waiting
	if w == nil {
		return fmt.Sprintf("idle %v %v %s", v.Finished, v.CanRun, v.State.Status)
	}
	return fmt.Sprintf("%s %s %d %d %v %v", w.Kind, w.Step, w.Seq, len(w.Approvals), v.CanApprove, v.CanRun)
}

// sse writes one server-sent event; multi-line data is split into data
// lines, which the browser joins again with newlines.
func sse(w io.Writer, event string, id int64, data string) {
	var b strings.Builder
	if id > 0 {
		fmt.Fprintf(&b, "id: %d\n", id)
	}
	b.WriteString("event: " + event + "\n")
	// A bare CR would end an SSE line; in HTML it is a character reference.
	data = strings.ReplaceAll(data, "\r", "&#13;")
	for _, line := range strings.Split(data, "\n") {
		b.WriteString("data: " + line + "\n")
	}
	b.WriteString("\n")
	io.WriteString(w, b.String())
}

// fragment renders one named template of a view to a string.
func (h *handlers) fragment(view, name string, p *page) (string, error) {
	t, ok := h.views[view]
	if !ok {
		return "", fmt.Errorf("ui: no view %q", view)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, name, p); err != nil {
		return "", fmt.Errorf("render %s/%s: %w", view, name, err)
	}
	return buf.String(), nil
}
