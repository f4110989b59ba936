package ui

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/server"
	"github.com/opsbook/opsbook/internal/store"
)

// The log viewer reads a run's log a page of rows at a time: the browser
// renders only the rows in view and asks for the page holding a line when
// it scrolls there, so a run of a million lines opens as fast as one of
// ten. A page ends at a line end after about pageRows rows (or, for a line
// that never ends, after pageForceBytes of it).
const (
	pageRows       = 500
	pageForceBytes = 1 << 20
	maxMatches     = 10000
	logIndexCache  = 32
)

// logPage is a run of consecutive events that makes whole rows.
type logPage struct {
	firstSeq, lastSeq int64 // lastSeq 0: the open page at the end of the log
	firstLine, rows   int
	forced            bool // closed inside a line, which it ended
}

// logSection is the rows of one step (or of what precedes the first).
type logSection struct {
	Step   string `json:"step"`
	Phase  string `json:"phase,omitempty"`
	Line   int    `json:"line"`
	Status string `json:"status,omitempty"`
}

// logIndex is where each page of a run's log starts, its step sections,
// and which steps fan out; it is built once by reading the log and then
// extended with the events that follow, never re-read.
type logIndex struct {
	mu       sync.Mutex
	seq      int64 // the last event read
	rows     int   // finished rows
	pages    []logPage
	cur      logPage // the open page
	curBytes int
	sections []logSection
	fanout   map[string]bool // phase/step of steps spread over hosts
	split    logSplitter
	used     time.Time
}

func newLogIndex() *logIndex {
	x := &logIndex{fanout: map[string]bool{}}
	x.split.emit = x.counted
	return x
}

func (x *logIndex) counted(r logRow) {
	if r.kind == 'm' && r.marker.Type == runbook.EventStepStarted {
		if n := len(x.sections); n == 0 || x.sections[n-1].Step != r.step || x.sections[n-1].Phase != r.phase {
			x.sections = append(x.sections, logSection{Step: r.step, Phase: r.phase, Line: x.rows})
		}
	}
	x.rows++
}

// total is the number of rows, an unfinished last line included.
func (x *logIndex) total() int {
	if x.split.open != "" {
		return x.rows + 1
	}
	return x.rows
}

func (x *logIndex) feed(ev *runbook.Event) {
	key := ev.Data["phase"] + "/" + ev.Step
	switch ev.Type {
	case runbook.EventStepStarted:
		if ev.Host == "" && ev.Data["hosts"] != "" {
			x.fanout[key] = true
		}
	case runbook.EventStepFinished, runbook.EventStepSkipped:
		if ev.Host == "" || !x.fanout[key] {
			for i := len(x.sections) - 1; i >= 0; i-- {
				if s := &x.sections[i]; s.Step == ev.Step && s.Phase == ev.Data["phase"] {
					s.Status = ev.Data["status"]
					if ev.Type == runbook.EventStepSkipped {
						s.Status = string(runbook.StepSkipped)
					}
					break
				}
			}
		}
	}
	if x.cur.firstSeq == 0 {
		x.cur = logPage{firstSeq: ev.Seq, firstLine: x.rows}
		x.curBytes = 0
	}
	x.split.feed(ev)
	x.seq = ev.Seq
	x.curBytes += len(ev.Text)
	switch {
	case x.split.open == "" && x.rows-x.cur.firstLine >= pageRows:
		x.closePage(false)
	case x.split.open != "" && x.curBytes >= pageForceBytes:
		x.split.flush()
		x.closePage(true)
	}
}

func (x *logIndex) closePage(forced bool) {
	x.cur.lastSeq, x.cur.rows, x.cur.forced = x.seq, x.rows-x.cur.firstLine, forced
	x.pages = append(x.pages, x.cur)
	x.cur = logPage{}
}

// extend reads the events after the last one read.
func (x *logIndex) extend(ctx context.Context, st *store.Store, runID string) error {
	for ev, err := range st.AllEvents(ctx, runID, x.seq) {
		if err != nil {
			return err
		}
		x.feed(&ev)
	}
	return nil
}

// page is the page holding line (the last page for line < 0 or past the end).
func (x *logIndex) page(line int) logPage {
	if line >= 0 {
		i := sort.Search(len(x.pages), func(i int) bool { return x.pages[i].firstLine+x.pages[i].rows > line })
		if i < len(x.pages) {
			return x.pages[i]
		}
	}
	if x.cur.firstSeq != 0 || len(x.pages) == 0 {
		c := x.cur
		if c.firstSeq == 0 {
			c.firstSeq, c.firstLine = x.seq+1, x.rows
		}
		c.rows = x.total() - c.firstLine
		return c
	}
	return x.pages[len(x.pages)-1]
}

// logIndexes keeps the indexes of recently viewed runs.
type logIndexes struct {
	mu sync.Mutex
	m  map[string]*logIndex
}

// index returns the run's log index, brought up to date, locked: the
// caller unlocks it.
func (h *handlers) logIndex(ctx context.Context, runID string) (*logIndex, error) {
	c := &h.logs
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]*logIndex{}
	}
	x, ok := c.m[runID]
	if !ok {
		if len(c.m) >= logIndexCache {
			var oldest string
			for id, o := range c.m {
				if oldest == "" || o.used.Before(c.m[oldest].used) {
					oldest = id
				}
			}
			delete(c.m, oldest)
		}
		x = newLogIndex()
		c.m[runID] = x
	}
	x.used = time.Now()
	c.mu.Unlock()
	x.mu.Lock()
	if err := x.extend(ctx, h.s.Store(), runID); err != nil {
		x.mu.Unlock()
		return nil, err
	}
	return x, nil
}

// readRows renders the rows of page pg (see logIndex.page), reading its
// events again: for every page but the open one, exactly pg.rows rows.
func readRows(ctx context.Context, st *store.Store, runID string, pg logPage, upTo int64, fn func(logRow)) error {
	var s logSplitter
	s.emit = fn
	last := pg.lastSeq
	if last == 0 {
		last = upTo
	}
	// Read exactly the page's events: a page of a huge log is a few of them.
	for after := pg.firstSeq - 1; after < last; {
		evs, err := st.Events(ctx, runID, after, int(min(last-after, store.MaxEventLimit)))
		if err != nil {
			return err
		}
		for i := range evs {
			s.feed(&evs[i])
			after = evs[i].Seq
		}
		if len(evs) == 0 {
			break
		}
	}
	if s.open != "" {
		s.partial.partial = pg.lastSeq == 0
		s.flush()
	}
	return nil
}

func (h *handlers) registerLogView() {
	h.s.Handle("GET /runs/{id}/log/rows", auth.Need(auth.RunbookView, h.scopeRun), "UI: the page of a run's log holding a line, as JSON rows for the log viewer", h.logRows)
	h.s.Handle("GET /runs/{id}/log/search", auth.Need(auth.RunbookView, h.scopeRun), "UI: the line numbers of a run's log that contain a text", h.logSearch)
}

// jsonRow is a row as the browser's log viewer receives it.
type jsonRow struct {
	K string       `json:"k"`           // o stdout, e stderr, m marker
	T int64        `json:"t"`           // Unix milliseconds
	H string       `json:"h,omitempty"` // host, for a step spread over hosts
	X string       `json:"x,omitempty"` // text without colour
	S []logSegment `json:"s,omitempty"` // coloured text
	C string       `json:"c,omitempty"` // a marker's class: ok, bad, wait, info
	P bool         `json:"p,omitempty"` // an unfinished line
}

type rowsReply struct {
	First    int          `json:"first"`
	Rows     []jsonRow    `json:"rows"`
	Lines    int          `json:"lines"`
	Seq      int64        `json:"seq"`
	Sections []logSection `json:"sections"`
	Finished bool         `json:"finished"`
}

// logRows answers the page of the log holding ?line= (the last page when
// absent or negative), with the log's size and step sections.
func (h *handlers) logRows(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	run, err := h.s.Store().GetRun(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	line := -1
	if v := r.URL.Query().Get("line"); v != "" {
		if line, err = strconv.Atoi(v); err != nil {
			return server.BadRequest("line must be a number, not %q", v)
		}
	}
	x, err := h.logIndex(ctx, run.ID)
	if err != nil {
		return err
	}
	pg, upTo := x.page(line), x.seq
	reply := rowsReply{First: pg.firstLine, Rows: []jsonRow{}, Lines: x.total(), Seq: x.seq,
		Sections: append([]logSection{}, x.sections...), Finished: run.Status.Finished()}
	fanout := make(map[string]bool, len(x.fanout))
	for k, v := range x.fanout {
		fanout[k] = v
	}
	x.mu.Unlock()
	p := h.newPage(r, "", "", nil)
	err = readRows(ctx, h.s.Store(), run.ID, pg, upTo, func(row logRow) {
		reply.Rows = append(reply.Rows, p.jsonRow(row, fanout))
	})
	if err != nil {
		return err
	}
	return writeJSON(w, reply)
}

func writeJSON(w http.ResponseWriter, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	return json.NewEncoder(w).Encode(v)
}

func (p *page) jsonRow(r logRow, fanout map[string]bool) jsonRow {
	j := jsonRow{K: string(r.kind), T: r.at.UnixMilli(), P: r.partial}
	if r.kind == 'm' {
		j.X, j.C = p.markerText(r.marker, fanout)
		return j
	}
	if fanout[r.phase+"/"+r.step] {
		j.H = r.host
	}
	j.X, j.S = parseANSI(r.text)
	if j.S != nil {
		j.X = ""
	}
	return j
}

// markerText is an event in words of the page's language, and its class.
func (p *page) markerText(ev *runbook.Event, fanout map[string]bool) (string, string) {
	where := ev.Step
	if ev.Host != "" && fanout[ev.Data["phase"]+"/"+ev.Step] {
		where += " @ " + ev.Host
	}
	with := func(s, text string) string {
		if text == "" {
			return s
		}
		return s + ": " + text
	}
	switch ev.Type {
	case runbook.EventStepStarted:
		switch {
		case ev.Data["hosts"] != "" && ev.Host == "":
			return p.T("log_step_started_hosts", where, strconv.Itoa(len(strings.Split(ev.Data["hosts"], ",")))), "step"
		case ev.Attempt > 1:
			return p.T("log_step_started_attempt", where, ev.Attempt), "step"
		case ev.Text != "":
			return p.T("log_step_calls", where, ev.Text), "step"
		}
		return p.T("log_step_started", where), "step"
	case runbook.EventStepFinished:
		status := ev.Data["status"]
		s := p.T("log_step_finished", where, p.StatusLabel(status))
		if ms, err := strconv.ParseFloat(ev.Data["duration_ms"], 64); err == nil {
			s += " " + p.T("log_took", formatDuration(time.Duration(ms*float64(time.Millisecond))))
		}
		return with(s, ev.Text), statusClass(status)
	case runbook.EventStepVerified:
		kind := p.T("check_" + ev.Data["kind"])
		if ev.Data["result"] == "pass" {
			return with(p.T("log_check_pass", where, kind), ev.Text), "ok"
		}
		return with(p.T("log_check_fail", where, kind), ev.Text), "bad"
	case runbook.EventStepSkipped:
		return with(p.T("log_step_skipped", where), ev.Text), "info"
	case runbook.EventGateWaiting:
		return with(p.T("log_gate_waiting", where), ev.Text), "wait"
	case runbook.EventManualWaiting:
		return with(p.T("log_manual_waiting", where), ev.Text), "wait"
	case runbook.EventAskWaiting:
		return with(p.T("log_ask_waiting", where), ev.Text), "wait"
	case runbook.EventGateDecided:
		return with(p.T("log_gate_decided", ev.Actor, p.T("decision_"+ev.Data["decision"]), where), ev.Text), "info"
	case runbook.EventManualDone:
		return with(p.T("log_manual_done", ev.Actor, where), ev.Text), "info"
	case runbook.EventAskAnswered:
		return with(p.T("log_ask_answered", ev.Actor, p.T("choice_"+ev.Data["choice"]), where), ev.Text), "info"
	case runbook.EventRunFinished:
		return p.T("log_run_finished", p.StatusLabel(ev.Data["status"])), statusClass(ev.Data["status"])
	case runbook.EventRunCancelled:
		return with(p.T("log_run_cancelled", ev.Actor), ev.Text), "bad"
	case runbook.EventRollbackStart:
		return with(p.T("log_rollback_started"), ev.Text), "bad"
	case runbook.EventRollbackFinish:
		return p.T("log_rollback_finished", p.StatusLabel(ev.Data["status"])), statusClass(ev.Data["status"])
	case runbook.EventGuardBreached:
		return p.T("log_guard_breached", ev.Data["guard"], ev.Data["value"], ev.Data["threshold"]), "bad"
	case runbook.EventAnomaly:
		return with(p.T("log_anomaly", ev.Actor), ev.Text), "info"
	}
	return string(ev.Type), "info"
}

func statusClass(status string) string {
	switch runbook.StepStatus(status) {
	case runbook.StepSucceeded:
		return "ok"
	case runbook.StepFailed, runbook.StepStatus(runbook.RunRolledBack), runbook.StepStatus(runbook.RunCancelled):
		return "bad"
	}
	return "info"
}

// rowText is a row as plain text: output without escape sequences, a
// marker in words.
func (p *page) rowText(r logRow, fanout map[string]bool) string {
	if r.kind == 'm' {
		s, _ := p.markerText(r.marker, fanout)
		return s
	}
	plain, _ := parseANSI(r.text)
	return plain
}

// logSearch answers the line numbers whose text contains ?q=, ignoring
// case, in order; at most maxMatches of them.
func (h *handlers) logSearch(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	run, err := h.s.Store().GetRun(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	q := strings.ToLower(r.URL.Query().Get("q"))
	if q == "" {
		return server.BadRequest("q is empty: give the text to find")
	}
	x, err := h.logIndex(ctx, run.ID)
	if err != nil {
		return err
	}
	upTo := x.seq
	fanout := make(map[string]bool, len(x.fanout))
	for k, v := range x.fanout {
		fanout[k] = v
	}
	x.mu.Unlock()
	p := h.newPage(r, "", "", nil)
	reply := struct {
		Lines     []int `json:"lines"`
		Truncated bool  `json:"truncated"`
	}{Lines: []int{}}
	line := 0
	err = readRows(ctx, h.s.Store(), run.ID, logPage{firstSeq: 1}, upTo, func(row logRow) {
		if len(reply.Lines) < maxMatches && strings.Contains(strings.ToLower(p.rowText(row, fanout)), q) {
			reply.Lines = append(reply.Lines, line)
		} else if len(reply.Lines) >= maxMatches {
			reply.Truncated = true
		}
		line++
	})
	if err != nil {
		return err
	}
	return writeJSON(w, reply)
}

// logText is the whole log as text, for reading elsewhere: every row with
// its time (UTC), its stream (out, err) or "==" for a marker in words, and
// the host of a step spread over hosts; output as the command printed it.
func (h *handlers) logText(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	run, err := h.s.Store().GetRun(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	x, err := h.logIndex(ctx, run.ID)
	if err != nil {
		return err
	}
	upTo := x.seq
	fanout := make(map[string]bool, len(x.fanout))
	for k, v := range x.fanout {
		fanout[k] = v
	}
	x.mu.Unlock()
	p := h.newPage(r, "", "", nil)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="run-%s.log"`, run.ID))
	w.Header().Set("Cache-Control", "no-store")
	io.WriteString(w, "# "+p.T("log_download_header", run.ID, run.Title, run.Environment)+"\n")
	return readRows(ctx, h.s.Store(), run.ID, logPage{firstSeq: 1}, upTo, func(row logRow) {
		io.WriteString(w, downloadLine(p, row, fanout))
	})
}

func downloadLine(p *page, row logRow, fanout map[string]bool) string {
	var b strings.Builder
	b.WriteString(row.at.UTC().Format("2006-01-02T15:04:05.000Z"))
	switch row.kind {
	case 'm':
		b.WriteString(" == ")
		b.WriteString(p.rowText(row, fanout))
	default:
		if row.kind == 'e' {
			b.WriteString(" err ")
		} else {
			b.WriteString(" out ")
		}
		if fanout[row.phase+"/"+row.step] && row.host != "" {
			b.WriteString(row.host + " ")
		}
		b.WriteString("| ")
		b.WriteString(row.text)
	}
	b.WriteByte('\n')
	return b.String()
}
