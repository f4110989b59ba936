package ui

import (
	"bytes"
	"fmt"
	"html"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/server"
)

func (h *handlers) registerLive() {
	h.s.Handle("GET /runs/{id}/live", auth.Need(auth.RunbookView, h.scopeRun), "UI: a run's log, timeline and panel as HTML server-sent events", h.live)
	h.s.Handle("GET /runs/{id}/log", auth.Need(auth.RunbookView, h.scopeRun), "UI: a run's whole log as text", h.logText)
}

// liveBatch is how many events one log message carries: big enough that a
// flood of output arrives in few DOM insertions, small enough to stream.
const liveBatch = 500

// live streams the run page's updates as server-sent events for the htmx
// SSE extension: "log" appends a chunk of log lines, "timeline" and
// "panel" replace those parts when the run's state changes, and "end"
// closes the stream once the run is finished and everything was sent.
// Event ids are log sequence numbers, so a reconnecting browser resumes
// where it left off.
func (h *handlers) live(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	st := h.s.Store()
	p := principal(r)
	run, err := st.GetRun(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	after := int64(0)
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 {
			after = n
		}
	}
	state := runbook.NewRunState(run.ID)
	var cursor logCursor
	if after > 0 {
		for ev, err := range st.AllEvents(ctx, run.ID, 0) {
			if err != nil {
				return err
			}
			if ev.Seq > after {
				break
			}
			state.Apply(ev)
			cursor.render(io.Discard, ev) // where the last line was left
		}
	}
	es := h.s.StreamRun(w, run.ID)
	defer es.Close()

	docSteps := h.snapshotSteps(ctx, run) // a snapshot never changes
	pg := h.newPage(r, run.Title, "overview", nil)
	lastPanel := ""
	first := true
	for {
		evs, err := st.Events(ctx, run.ID, after, liveBatch)
		if err != nil {
			return nil // the client reconnects
		}
		var chunk bytes.Buffer
		lines, changed := 0, first
		for _, ev := range evs {
			state.Apply(ev)
			after = ev.Seq
			lines += cursor.render(&chunk, ev)
			if ev.Type != runbook.EventStepOutput {
				changed = true
			}
		}
		first = false
		if chunk.Len() > 0 {
			sse(w, "log", after, fmt.Sprintf(`<div class="chunk" data-lines="%d">%s</div>`, lines, chunk.String()))
		}
		finished := false
		if len(evs) < liveBatch {
			cur, err := st.GetRun(ctx, run.ID)
			if err == nil {
				run = cur
				if last, err := st.LastSeq(ctx, run.ID); err == nil && run.Status.Finished() && last <= after {
					finished, changed = true, true
				}
			}
		}
		if changed {
			v := h.viewRun(p, run, state, docSteps)
			pg.Data = v
			if s, err := h.fragment("run", "timeline", pg); err == nil {
				sse(w, "timeline", 0, s)
			}
			sig := panelSignature(v)
			if sig != lastPanel {
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
		if (len(evs) > 0 || changed) && !es.Flush() {
			return nil
		}
		if len(evs) == liveBatch {
			continue
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

// logCursor renders a run's events into the log in order. Output arrives
// in chunks cut anywhere, so it remembers the source (step, host, stream)
// of a line left unfinished: the next chunk from that source continues
// the line without a second host prefix, and anything else ends it first.
// Every line of output thus shows its host prefix once, however the
// output was chunked.
type logCursor struct {
	open  string // source of the unfinished last line; "" at a line start
	plain bool   // text instead of HTML, output only (the downloaded log)
}

// render writes one event (output, or a marker for a moment that
// matters) and returns how many line ends it wrote.
func (c *logCursor) render(b io.Writer, ev runbook.Event) int {
	if ev.Type == runbook.EventStepOutput {
		return c.output(b, ev)
	}
	if c.plain {
		return 0
	}
	if c.open == "" {
		return logMarker(b, ev)
	}
	var m bytes.Buffer
	if logMarker(&m, ev) == 0 {
		return 0
	}
	c.open = ""
	io.WriteString(b, "\n")
	b.Write(m.Bytes())
	return 2
}

func (c *logCursor) output(b io.Writer, ev runbook.Event) int {
	source := ev.Step + "\x00" + ev.Host + "\x00" + ev.Stream
	lines := 0
	if c.open != "" && c.open != source {
		io.WriteString(b, "\n")
		lines++
		c.open = ""
	}
	class := "o"
	if ev.Stream == "stderr" {
		class = "err"
	}
	for text := ev.Text; text != ""; {
		line, rest, ended := strings.Cut(text, "\n")
		nl := ""
		if ended {
			nl = "\n"
			lines++
		}
		switch {
		case c.plain && c.open == "" && ev.Host != "":
			io.WriteString(b, ev.Host+"│"+line+nl)
		case c.plain:
			io.WriteString(b, line+nl)
		case c.open == "" && ev.Host != "":
			fmt.Fprintf(b, `<span class="muted">%s│</span><span class="%s">%s</span>%s`, html.EscapeString(ev.Host), class, html.EscapeString(line), nl)
		default:
			fmt.Fprintf(b, `<span class="%s">%s</span>%s`, class, html.EscapeString(line), nl)
		}
		c.open = source
		if ended {
			c.open = ""
		}
		text = rest
	}
	return lines
}

// logMarker renders a non-output event as a line of its own and returns
// 1, or 0 for events the log does not show.
func logMarker(b io.Writer, ev runbook.Event) int {
	marker := func(class, text string) int {
		fmt.Fprintf(b, `<span class="%s">%s</span>`+"\n", class, html.EscapeString(text))
		return 1
	}
	where := ev.Step
	if ev.Host != "" {
		where += " @ " + ev.Host
	}
	switch ev.Type {
	case runbook.EventStepStarted:
		text := "▶ " + where
		if ev.Attempt > 1 {
			text += fmt.Sprintf(" (attempt %d)", ev.Attempt)
		}
		return marker("ls", text)
	case runbook.EventStepFinished:
		text := "■ " + where + " " + ev.Data["status"]
		if ms, err := strconv.ParseFloat(ev.Data["duration_ms"], 64); err == nil {
			text += " (" + formatDuration(time.Duration(ms*float64(time.Millisecond))) + ")"
		}
		if ev.Text != "" {
			text += ": " + ev.Text
		}
		return marker("lv", text)
	case runbook.EventStepVerified:
		return marker("lv", fmt.Sprintf("  %s %s: %s %s", where, ev.Data["kind"], ev.Data["result"], ev.Text))
	case runbook.EventStepSkipped:
		return marker("lv", "⤼ "+where+" skipped "+ev.Text)
	case runbook.EventGateWaiting, runbook.EventManualWaiting, runbook.EventAskWaiting:
		return marker("ls", "‖ "+string(ev.Type)+" "+where+" "+ev.Text)
	case runbook.EventGateDecided, runbook.EventManualDone, runbook.EventAskAnswered:
		return marker("ls", fmt.Sprintf("✔ %s %s by %s %s%s", ev.Type, where, ev.Actor, ev.Data["decision"]+ev.Data["choice"], suffix(ev.Text)))
	case runbook.EventRunFinished:
		return marker("ls", "run "+ev.Data["status"])
	case runbook.EventRunCancelled:
		return marker("err", "cancelled by "+ev.Actor+suffix(ev.Text))
	case runbook.EventRollbackStart:
		return marker("err", "rollback: "+ev.Text)
	case runbook.EventGuardBreached:
		return marker("err", fmt.Sprintf("guard %s breached: %s (threshold %s)", ev.Data["guard"], ev.Data["value"], ev.Data["threshold"]))
	case runbook.EventAnomaly:
		return marker("err", "note by "+ev.Actor+": "+ev.Text)
	}
	return 0
}

func suffix(s string) string {
	if s == "" {
		return ""
	}
	return ": " + s
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

// logText is the whole log as plain text (the page keeps only the tail).
func (h *handlers) logText(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	run, err := h.s.Store().GetRun(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="run-%s.log"`, run.ID))
	w.Header().Set("Cache-Control", "no-store")
	cursor := logCursor{plain: true}
	for ev, err := range h.s.Store().AllEvents(ctx, run.ID, 0) {
		if err != nil {
			return server.Errorf(http.StatusInternalServerError, "internal", "read the log: %v", err)
		}
		cursor.render(w, ev)
	}
	return nil
}
