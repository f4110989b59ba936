// Package report turns a run's record into the documents people keep: the
// printable checklist (Markdown, or HTML that prints on one A4 page) filled
// with planned and actual times, results, verifications and decisions, and
// the postmortem pre-filled with the timeline, estimate vs actual and the
// deviations. Everything is derived from the event log through
// runbook.Replay, never from memory; sections that need people's words are
// left as <<FILL: …>> placeholders, which lint reports until written.
package report

import (
	"fmt"
	"strings"
	"time"

	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/snapshot"
)

// Input is what a checklist or a postmortem is made from. Run, Events and
// State are nil for the blank checklist.
type Input struct {
	Task     string
	Lang     string // "en" or "zh"
	Runbook  *runbook.Document
	Run      *runbook.Run
	Events   []runbook.Event
	Items    []Item            // pre-execution checklist
	Approved []Approval        // reviews of the snapshot that ran
	Location *time.Location    // times are shown in it; nil means UTC
	State    *runbook.RunState // derived from Events when nil
}

// Item is a pre-execution checklist item with its tick.
type Item struct {
	ID     string
	Text   string
	Ticked bool
	By     string
	At     time.Time
	Note   string
}

// Approval is one reviewer's approval.
type Approval struct {
	By   string
	At   time.Time
	Note string
}

// Row is one runbook step as the checklist shows it.
type Row struct {
	N            int
	ID           string
	Title        string
	Planned      string
	Estimate     time.Duration
	Start, End   string
	Duration     string
	Actual       time.Duration
	Result       string
	Verification string
	Decision     string
	Hosts        string
	// HostRows are a fan-out step's hosts, one sub-row each (Title is the
	// host's name and batch).
	HostRows []Row
}

// RunHeader is what the checklist and the postmortem say about the run as
// a whole.
type RunHeader struct {
	RunID     string
	Env       string
	Snapshot  string
	StartedBy string
	Started   string
	Finished  string
	Result    string
	Emergency string
}

// header describes in.Run from its replayed state st.
func (in *Input) header(st *runbook.RunState, l map[string]string) RunHeader {
	h := RunHeader{RunID: in.Run.ID, Env: orElse(st.Environment, in.Run.Environment),
		Snapshot: snapshot.ShortOf(orElse(st.Snapshot, in.Run.Snapshot)), StartedBy: orElse(st.StartedBy, in.Run.CreatedBy),
		Result: orElse(l[string(st.Status)], string(st.Status)), Emergency: in.emergencyReason()}
	if !st.StartedAt.IsZero() {
		h.Started = in.stamp(st.StartedAt)
	}
	if !st.FinishedAt.IsZero() {
		h.Finished = in.stamp(st.FinishedAt)
	}
	return h
}

// approvals lists the reviews as "who (when)".
func (in *Input) approvals() []string {
	var out []string
	for _, a := range in.Approved {
		out = append(out, fmt.Sprintf("%s (%s)", a.By, in.stamp(a.At)))
	}
	return out
}

func (in *Input) loc() *time.Location {
	if in.Location == nil {
		return time.UTC
	}
	return in.Location
}

func (in *Input) state() *runbook.RunState {
	if in.State == nil && in.Events != nil {
		in.State = runbook.Replay(in.Events)
	}
	return in.State
}

// Rows lists the runbook's steps with what the run did to each.
func (in *Input) Rows() []Row {
	l := labels(in.Lang)
	st := in.state()
	var rows []Row
	for i, s := range in.Runbook.Steps {
		r := Row{N: i + 1, ID: s.ID, Title: s.Title, Estimate: s.Estimate}
		if s.Estimate > 0 {
			r.Planned = formatDuration(s.Estimate)
		} else if s.Until != nil && s.Until.Timeout > 0 {
			r.Planned = "≤ " + formatDuration(s.Until.Timeout)
		}
		if st != nil {
			in.fill(&r, stepState(st, s.ID), l)
		}
		rows = append(rows, r)
	}
	return rows
}

// stepState is the state of a runbook step; a call step is the sum of its
// called steps ("CALL/SUB"), which is how the engine records them.
func stepState(st *runbook.RunState, id string) *runbook.StepState {
	if s := st.Step(id); s != nil {
		return s
	}
	var sum *runbook.StepState
	for _, s := range st.Steps {
		if !strings.HasPrefix(s.ID, id+"/") {
			continue
		}
		if sum == nil {
			sum = &runbook.StepState{ID: id, Status: runbook.StepSucceeded}
		}
		if sum.StartedAt.IsZero() || s.StartedAt.Before(sum.StartedAt) && !s.StartedAt.IsZero() {
			sum.StartedAt = s.StartedAt
		}
		if s.FinishedAt.After(sum.FinishedAt) {
			sum.FinishedAt = s.FinishedAt
		}
		if s.Status != runbook.StepSucceeded && s.Status != runbook.StepSkipped {
			sum.Status = s.Status
		}
		sum.Checks = append(sum.Checks, s.Checks...)
		sum.Decisions = append(sum.Decisions, s.Decisions...)
		sum.Retries = append(sum.Retries, s.Retries...)
	}
	return sum
}

func (in *Input) fill(r *Row, s *runbook.StepState, l map[string]string) {
	if s == nil {
		r.Result = l["notRun"]
		return
	}
	if !s.StartedAt.IsZero() {
		r.Start = in.clock(s.StartedAt)
	}
	if !s.FinishedAt.IsZero() {
		r.End = in.clock(s.FinishedAt)
	}
	if !s.StartedAt.IsZero() && !s.FinishedAt.IsZero() {
		r.Actual = s.FinishedAt.Sub(s.StartedAt)
		r.Duration = formatDuration(r.Actual)
	}
	r.Result = l[string(s.Status)]
	if r.Result == "" {
		r.Result = string(s.Status)
	}
	if s.Attempts > 1 {
		r.Result += fmt.Sprintf(" (%s %d)", l["attempts"], s.Attempts)
	}
	if s.Status == runbook.StepSkipped && s.SkipReason != "" {
		r.Result += ": " + s.SkipReason
	}
	var pass, fail int
	for _, c := range s.Checks {
		if c.Passed {
			pass++
		} else {
			fail++
		}
	}
	switch {
	case pass+fail == 0:
	case fail == 0:
		r.Verification = l["pass"]
	default:
		// The last check decides; earlier failures were retried.
		last := s.Checks[len(s.Checks)-1]
		if last.Passed {
			r.Verification = fmt.Sprintf("%s (%d %s)", l["pass"], fail, l["failedBefore"])
		} else {
			r.Verification = l["fail"]
			if last.Detail != "" {
				r.Verification += ": " + firstLine(last.Detail)
			}
		}
	}
	var ds []string
	for _, d := range s.Decisions {
		ds = append(ds, fmt.Sprintf("%s — %s", choiceWord(d.Choice, l), d.Actor))
	}
	r.Decision = strings.Join(ds, "; ")
	if s.Fanout {
		for _, h := range s.Hosts {
			r.HostRows = append(r.HostRows, in.hostRow(s, h, l))
		}
		return
	}
	if len(s.Hosts) > 1 {
		var hs []string
		for _, h := range s.Hosts {
			hs = append(hs, h.Host+" "+hostMark(h.Status))
		}
		r.Hosts = strings.Join(hs, ", ")
	}
}

// hostRow is one host of a fan-out step: its times, result (a host never
// started says so) and its own checks.
func (in *Input) hostRow(s *runbook.StepState, h *runbook.HostState, l map[string]string) Row {
	title := h.Host
	if h.Batch > 0 {
		title += fmt.Sprintf(" (%s %d)", l["batch"], h.Batch)
	}
	r := Row{ID: s.ID, Title: title}
	if !h.StartedAt.IsZero() {
		r.Start = in.clock(h.StartedAt)
	}
	if !h.FinishedAt.IsZero() {
		r.End = in.clock(h.FinishedAt)
		r.Actual = h.FinishedAt.Sub(h.StartedAt)
		r.Duration = formatDuration(r.Actual)
	}
	r.Result = hostMark(h.Status) + " " + orElse(l[string(h.Status)], string(h.Status))
	if h.NotStarted() {
		r.Result = "– " + l["notStarted"]
	}
	if h.Status == runbook.StepFailed && h.Error != "" {
		r.Result += ": " + firstLine(h.Error)
	}
	var checks []string
	for _, c := range s.Checks {
		if c.Host != h.Host {
			continue
		}
		res := l["pass"]
		if !c.Passed {
			res = l["fail"]
		}
		checks = append(checks, c.Kind+" "+res)
	}
	r.Verification = strings.Join(checks, ", ")
	return r
}

func hostMark(s runbook.StepStatus) string {
	switch s {
	case runbook.StepSucceeded:
		return "✓"
	case runbook.StepFailed:
		return "✗"
	case runbook.StepSkipped:
		return "–"
	}
	return string(s)
}

func choiceWord(c string, l map[string]string) string {
	if w := l["choice."+c]; w != "" {
		return w
	}
	return c
}

func (in *Input) clock(t time.Time) string { return t.In(in.loc()).Format("15:04:05") }
func (in *Input) stamp(t time.Time) string {
	return t.In(in.loc()).Format("2006-01-02 15:04:05 MST")
}

// formatDuration writes a duration as people do: 45s, 5m, 1h30m, 2m05s.
func formatDuration(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	d = d.Round(time.Second)
	h, m, s := int(d/time.Hour), int(d%time.Hour/time.Minute), int(d%time.Minute/time.Second)
	switch {
	case h > 0 && s == 0:
		if m == 0 {
			return fmt.Sprintf("%dh", h)
		}
		return fmt.Sprintf("%dh%02dm", h, m)
	case h > 0:
		return fmt.Sprintf("%dh%02dm%02ds", h, m, s)
	case m > 0 && s == 0:
		return fmt.Sprintf("%dm", m)
	case m > 0:
		return fmt.Sprintf("%dm%02ds", m, s)
	}
	return fmt.Sprintf("%ds", s)
}

// signedDuration writes actual minus planned with its sign.
func signedDuration(d time.Duration) string {
	if d < 0 {
		return "−" + formatDuration(-d)
	}
	if d == 0 {
		return "±0s"
	}
	return "+" + formatDuration(d)
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] + " …"
	}
	if r := []rune(s); len(r) > 80 {
		s = string(r[:80]) + "…"
	}
	return s
}

// emergencyReason is the override reason the run started with, if any.
func (in *Input) emergencyReason() string {
	if in.Run != nil && in.Run.Emergency != "" {
		return in.Run.Emergency
	}
	for _, ev := range in.Events {
		if ev.Type == runbook.EventRunStarted {
			return ev.Data["emergency"]
		}
	}
	return ""
}

func timeDuration(n int64) time.Duration { return time.Duration(n) }
