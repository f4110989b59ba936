package ui

import (
	"strings"
	"time"

	"github.com/opsbook/opsbook/internal/runbook"
)

// logRow is one row of a run's log as the viewer shows it: a line of
// output, or a marker for a moment that matters (a step started, a gate
// was decided, …).
type logRow struct {
	kind    byte // 'o' stdout, 'e' stderr, 'm' marker
	step    string
	phase   string // runbook.PhaseMain or PhaseRollback
	host    string
	at      time.Time
	text    string         // a line of output without its newline, escape sequences and all
	marker  *runbook.Event // the event a marker row stands for
	partial bool           // the line has not ended yet
}

// logSplitter turns a run's events into rows. Output arrives in chunks
// cut anywhere, so it remembers the source (step, host, stream) of a line
// left unfinished: the next chunk from that source continues the line,
// and anything else (another source, a marker) ends it first. Every line
// of output thus becomes exactly one row, however it was chunked.
type logSplitter struct {
	open    string // source of the unfinished row; "" at a line start
	partial logRow
	emit    func(logRow)
}

func (s *logSplitter) feed(ev *runbook.Event) {
	if ev.Type != runbook.EventStepOutput {
		if !shownMarker(ev.Type) {
			return
		}
		s.flush()
		e := *ev
		s.emit(logRow{kind: 'm', step: ev.Step, phase: ev.Data["phase"], host: ev.Host, at: ev.Time, marker: &e})
		return
	}
	source := ev.Step + "\x00" + ev.Host + "\x00" + ev.Stream + "\x00" + ev.Data["phase"]
	if s.open != "" && s.open != source {
		s.flush()
	}
	kind := byte('o')
	if ev.Stream == "stderr" {
		kind = 'e'
	}
	for text := ev.Text; text != ""; {
		line, rest, ended := strings.Cut(text, "\n")
		if s.open != "" {
			s.partial.text += line
		} else {
			s.partial = logRow{kind: kind, step: ev.Step, phase: ev.Data["phase"], host: ev.Host, at: ev.Time, text: line}
			s.open = source
		}
		if ended {
			s.emit(s.partial)
			s.open, s.partial = "", logRow{}
		}
		text = rest
	}
}

// flush ends an unfinished row.
func (s *logSplitter) flush() {
	if s.open != "" {
		s.emit(s.partial)
		s.open, s.partial = "", logRow{}
	}
}

// shownMarker reports whether the log shows a row for events of type t.
func shownMarker(t runbook.EventType) bool {
	switch t {
	case runbook.EventStepStarted, runbook.EventStepFinished, runbook.EventStepVerified, runbook.EventStepSkipped,
		runbook.EventGateWaiting, runbook.EventManualWaiting, runbook.EventAskWaiting,
		runbook.EventGateDecided, runbook.EventManualDone, runbook.EventAskAnswered,
		runbook.EventRunFinished, runbook.EventRunCancelled, runbook.EventRollbackStart, runbook.EventRollbackFinish,
		runbook.EventGuardBreached, runbook.EventAnomaly:
		return true
	}
	return false
}
