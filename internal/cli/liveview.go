package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/term"

	"github.com/opsbook/opsbook/internal/runbook"
)

// The live view of a run in a terminal: a compact region at the bottom of
// the screen, redrawn in place, with the step list, elapsed time against
// the estimates, the running step's last output lines and the question the
// run waits for. liveModel is what it shows; renderFrame and renderSummary
// are pure functions of it, so the layout is tested with golden frames and
// the terminal driver (liveTerm) only moves the cursor.

// liveStep is one planned step as the view lists it.
type liveStep struct {
	id, phase, title string
	estimate         time.Duration
}

// maxTailLines bounds the output lines the view keeps for the running step.
const maxTailLines = 200

// liveModel is everything the live view shows, folded from the run's events.
type liveModel struct {
	runID, title, environment string
	estimate                  time.Duration // the runbook's
	steps                     []liveStep    // main steps, then rollback steps
	state                     *runbook.RunState

	tailLabel string   // the step whose output the tail holds
	tail      []string // its last complete output lines, sanitised
	partial   string   // its unfinished last line

	failedTail map[string][]string // the last output lines of each step that failed, by label

	ensured [2]int // steps of the state (main, rollback) already checked to be listed

	prompt []string // the question being asked: its lines, the last one is where the answer is typed
	notice string   // why the last answer was refused, or other news for the operator
	// report is the state of the reporting to a server (run --local) when
	// it is news: kept until the reporter says otherwise.
	report string
}

func newLiveModel(runID string, doc, rollback *runbook.Document) *liveModel {
	m := &liveModel{runID: runID, state: runbook.NewRunState(runID)}
	if doc != nil {
		m.title = doc.Title
		m.estimate = doc.Front.Estimate
		for _, s := range doc.Steps {
			m.steps = append(m.steps, liveStep{id: s.ID, title: s.Title, estimate: s.Estimate})
		}
	}
	if rollback != nil {
		for _, s := range rollback.Steps {
			m.steps = append(m.steps, liveStep{id: s.ID, phase: runbook.PhaseRollback, title: s.Title, estimate: s.Estimate})
		}
	}
	return m
}

// apply folds one event into the model.
func (m *liveModel) apply(ev runbook.Event) {
	m.state.Apply(ev)
	switch ev.Type {
	case runbook.EventRunStarted:
		if m.title == "" {
			m.title = ev.Text
		}
		m.environment = ev.Data["env"]
	case runbook.EventStepStarted:
		// A step (or its next attempt) starting shows its own output from
		// then on.
		m.tailLabel, m.tail, m.partial = stepLabel(ev), nil, ""
		m.notice = ""
	case runbook.EventStepFinished:
		if ev.Data["status"] == string(runbook.StepFailed) && stepLabel(ev) == m.tailLabel {
			tail := m.tailLines()
			if m.failedTail == nil {
				m.failedTail = map[string][]string{}
			}
			m.failedTail[m.tailLabel] = append([]string(nil), tail[max(len(tail)-5, 0):]...)
		}
	case runbook.EventStepOutput:
		label := stepLabel(ev)
		if label != m.tailLabel {
			m.tailLabel, m.tail, m.partial = label, nil, ""
		}
		m.addOutput(ev.Text)
	}
	// Steps the document does not list (a remote run without the document,
	// or a document changed since) are shown as they appear. The state only
	// ever appends steps: those looked at before need no second look.
	m.ensured[0] = m.ensureSteps(m.state.Steps, m.ensured[0], runbook.PhaseMain)
	if m.state.Rollback != nil {
		m.ensured[1] = m.ensureSteps(m.state.Rollback.Steps, m.ensured[1], runbook.PhaseRollback)
	}
}

// ensureSteps lists the steps of states from index done on and returns how
// many have been looked at. A state replaced by a shorter one (the prior
// state of a resumed run) is looked at again from the start.
func (m *liveModel) ensureSteps(states []*runbook.StepState, done int, phase string) int {
	if done > len(states) {
		done = 0
	}
	for _, st := range states[done:] {
		m.ensureStep(st.ID, phase)
	}
	return len(states)
}

func (m *liveModel) ensureStep(id, phase string) {
	for _, s := range m.steps {
		if s.id == id && s.phase == phase {
			return
		}
	}
	m.steps = append(m.steps, liveStep{id: id, phase: phase, title: id})
}

func (m *liveModel) addOutput(text string) {
	// Only the last maxTailLines complete lines of text can stay in the
	// tail: the lines before them are skipped, not split (a chunk of `yes`
	// holds thousands), and the unfinished line they continued with them.
	if skip := lastLinesStart(text, maxTailLines); skip > 0 {
		m.partial, text = "", text[skip:]
	}
	for text != "" {
		line, rest, complete := strings.Cut(text, "\n")
		text = rest
		if len(line) >= maxViewLine {
			m.partial = line[len(line)-maxViewLine:]
		} else {
			m.partial += line
			if len(m.partial) > maxViewLine {
				m.partial = m.partial[len(m.partial)-maxViewLine:]
			}
		}
		if complete {
			m.tail = append(m.tail, sanitizeLine(m.partial))
			m.partial = ""
			// Trimmed in bulk: copying the last lines down for every
			// new line would cost maxTailLines copies per line.
			if len(m.tail) >= 2*maxTailLines {
				m.tail = append(m.tail[:0], m.tail[len(m.tail)-maxTailLines:]...)
			}
		}
	}
}

// lastLinesStart is the offset in text of the first of its last n lines
// that end in a newline, or 0 when it has no more than n of them.
func lastLinesStart(text string, n int) int {
	end := len(text)
	for range n + 1 {
		i := strings.LastIndexByte(text[:end], '\n')
		if i < 0 {
			return 0
		}
		end = i
	}
	return end + 1
}

// tailLines are the output lines to show, the unfinished one last.
func (m *liveModel) tailLines() []string {
	tail := m.tail[max(len(m.tail)-maxTailLines, 0):]
	if m.partial == "" {
		return tail
	}
	return append(tail[:len(tail):len(tail)], sanitizeLine(m.partial))
}

// shown are the steps to list: the rollback document's only once it runs.
func (m *liveModel) shown() []liveStep {
	if m.state.Rollback != nil {
		return m.steps
	}
	var out []liveStep
	for _, s := range m.steps {
		if s.phase != runbook.PhaseRollback {
			out = append(out, s)
		}
	}
	return out
}

func (m *liveModel) stepState(s liveStep) *runbook.StepState {
	return m.state.StepIn(s.phase, s.id)
}

// current is the index in steps of the step the run is at: the waiting
// one, else the last one started, else the first not done.
func (m *liveModel) current(steps []liveStep) int {
	cur := -1
	for i, s := range steps {
		st := m.stepState(s)
		if st == nil {
			continue
		}
		if st.Status == runbook.StepWaiting {
			return i
		}
		if st.Status == runbook.StepRunning {
			cur = i
		}
	}
	if cur >= 0 {
		return cur
	}
	for i, s := range steps {
		if st := m.stepState(s); st == nil || !st.Done() {
			return i
		}
	}
	return len(steps) - 1
}

// palette colours a frame; the zero palette leaves it plain (NO_COLOR).
type palette struct{ on bool }

func (p palette) paint(code, s string) string {
	if !p.on || s == "" || code == "" {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

const (
	colGreen  = "32"
	colRed    = "31"
	colYellow = "33"
	colCyan   = "36"
	colDim    = "2"
	colBold   = "1"
)

func statusSymbol(st *runbook.StepState) (string, string) {
	if st == nil {
		return "·", colDim
	}
	switch st.Status {
	case runbook.StepSucceeded:
		return "✓", colGreen
	case runbook.StepFailed:
		return "✗", colRed
	case runbook.StepSkipped:
		return "↷", colDim
	case runbook.StepRunning:
		return "▶", colCyan
	case runbook.StepWaiting:
		return "⏸", colYellow
	}
	return "·", colDim
}

// renderFrame lays out the live region for a terminal of width × height:
// at most height-1 lines, each at most width-1 columns wide (so no line
// wraps and the driver can count the lines it has to redraw).
func renderFrame(m *liveModel, now time.Time, width, height int, color bool) []string {
	pal := palette{on: color}
	width = max(width-1, 20)
	height = max(height-1, 6)

	var head strings.Builder
	head.WriteString("opsbook ▸ ")
	head.WriteString(orText(m.title, "run"))
	if m.environment != "" {
		head.WriteString(" · " + m.environment)
	}
	total := "-"
	if !m.state.StartedAt.IsZero() {
		end := now
		if !m.state.FinishedAt.IsZero() {
			end = m.state.FinishedAt
		}
		total = compactDuration(end.Sub(m.state.StartedAt))
	}
	right := total
	if m.estimate > 0 {
		right += " / est " + compactDuration(m.estimate)
	}
	right = string(m.state.Status) + " " + right
	left := fitLeft(head.String(), width-visibleWidth(right)-1)
	header := pal.paint(colBold, left) + strings.Repeat(" ", max(width-visibleWidth(left)-visibleWidth(right), 1)) + right

	prompt := m.promptLines(width, pal)
	avail := height - 1 - len(prompt)
	tail := m.tailLines()
	// The step list gets what it needs, leaving room for a few output lines;
	// the output tail gets the rest, up to 12 lines.
	wantTail := min(len(tail), 12)
	stepRows := min(len(m.shown()), max(avail-min(wantTail, 4)-1, 3))
	tailRows := min(wantTail, max(avail-stepRows-1, 0))

	lines := []string{header}
	lines = append(lines, m.stepLines(now, width, stepRows, pal)...)
	if tailRows > 0 {
		rule := "── " + m.tailLabel + " output "
		lines = append(lines, pal.paint(colDim, fitLeft(rule, width)+strings.Repeat("─", max(width-visibleWidth(rule), 0))))
		for _, l := range tail[len(tail)-tailRows:] {
			lines = append(lines, pal.paint(colDim, "│ ")+fitLeft(l, width-2))
		}
	}
	return append(lines, prompt...)
}

// stepLines is the step list in at most rows lines; a list that does not
// fit is shown around the current step, with what is left out counted.
func (m *liveModel) stepLines(now time.Time, width, rows int, pal palette) []string {
	steps := m.shown()
	if rows <= 0 || len(steps) == 0 {
		return nil
	}
	from, to := 0, len(steps)
	if len(steps) > rows {
		inner := max(rows-2, 1)
		cur := m.current(steps)
		from = max(min(cur-inner/2, len(steps)-inner), 0)
		to = from + inner
	}
	idw := 0
	for _, s := range steps[from:to] {
		idw = max(idw, visibleWidth(s.id)+len(phasePrefix(s.phase)))
	}
	idw = min(idw, width/3)
	var out []string
	if from > 0 {
		out = append(out, pal.paint(colDim, fmt.Sprintf("  … %d step(s) above", from)))
	}
	for _, s := range steps[from:to] {
		st := m.stepState(s)
		sym, col := statusSymbol(st)
		dur := "-"
		durCol := ""
		if st != nil && !st.StartedAt.IsZero() {
			d := st.Duration(now)
			dur = compactDuration(d)
			if st.Status == runbook.StepWaiting {
				// The clock stands still while a question is asked.
				dur = "waiting"
			}
			if s.estimate > 0 && d > s.estimate {
				durCol = colYellow
			}
		}
		times := dur
		if s.estimate > 0 {
			times += " / " + compactDuration(s.estimate)
		}
		times = fmt.Sprintf("%13s", times)
		left := padRight(fitLeft(phasePrefix(s.phase)+s.id, idw), idw) + "  " + s.title
		if st != nil && st.Attempts > 1 {
			left += fmt.Sprintf(" (attempt %d)", st.Attempts)
		}
		if st != nil && len(st.Hosts) > 1 {
			done := 0
			for _, h := range st.Hosts {
				if h.Status == runbook.StepSucceeded || h.Status == runbook.StepFailed || h.Status == runbook.StepSkipped {
					done++
				}
			}
			left += fmt.Sprintf(" [%d/%d hosts]", done, len(st.Hosts))
		}
		if detail := stepDetail(st); detail != "" {
			left += " — " + detail
		}
		left = padRight(fitLeft(left, width-2-1-visibleWidth(times)), width-2-1-visibleWidth(times))
		out = append(out, pal.paint(col, sym)+" "+left+" "+pal.paint(durCol, times))
	}
	if to < len(steps) {
		out = append(out, pal.paint(colDim, fmt.Sprintf("  … %d step(s) below", len(steps)-to)))
	}
	return out
}

func phasePrefix(phase string) string {
	if phase == runbook.PhaseRollback {
		return "rollback/"
	}
	return ""
}

// promptLines are the question the run waits for (from state.Waiting), the
// notice and the line being answered.
func (m *liveModel) promptLines(width int, pal palette) []string {
	var out []string
	if w := m.state.Waiting; w != nil {
		var head string
		switch w.Kind {
		case runbook.WaitKindGate:
			head = fmt.Sprintf("⏸ Go/No-Go gate %s", w.Step)
			if need := w.Approvers - len(w.Approvals); need > 0 {
				head += fmt.Sprintf(" — %d more approval(s) needed", need)
				if len(w.Approvals) > 0 {
					var who []string
					for _, a := range w.Approvals {
						who = append(who, a.Actor)
					}
					head += " (approved by " + strings.Join(who, ", ") + ")"
				}
			}
		case runbook.WaitKindManual:
			head = "⏸ Manual step " + w.Step + " — do this, then confirm"
		case runbook.WaitKindAsk:
			head = "⏸ " + orText(w.Step, "guard "+w.Guard) + " failed — what now? (" + strings.Join(w.Options, " / ") + ")"
		}
		out = append(out, pal.paint(colYellow, fitLeft(head, width)))
		text := strings.TrimSpace(w.Text)
		lines := strings.Split(text, "\n")
		const maxCriteria = 8
		for i, l := range lines {
			if i == maxCriteria-1 && len(lines) > maxCriteria {
				out = append(out, fitLeft(fmt.Sprintf("  … %d more line(s)", len(lines)-i), width))
				break
			}
			if l = sanitizeLine(l); l != "" || i > 0 {
				out = append(out, "  "+fitLeft(l, width-2))
			}
		}
	}
	if m.report != "" {
		out = append(out, pal.paint(colRed, fitLeft("! "+m.report, width)))
	}
	if m.notice != "" {
		out = append(out, pal.paint(colRed, fitLeft("! "+m.notice, width)))
	}
	for _, l := range m.prompt {
		out = append(out, fitLeft(l, width))
	}
	return out
}

// renderSummary is what stays on the screen when the run ends: the step
// table with durations against estimates, why failed steps failed (with
// their last output lines) and how to see everything.
func renderSummary(m *liveModel, now time.Time, width int, color bool) []string {
	pal := palette{on: color}
	width = max(width-1, 20)
	s := m.state
	total := "-"
	if !s.StartedAt.IsZero() {
		end := s.FinishedAt
		if end.IsZero() {
			end = now
		}
		total = compactDuration(end.Sub(s.StartedAt))
	}
	statusCol := colRed
	if s.Status == runbook.RunSucceeded {
		statusCol = colGreen
	}
	head := fmt.Sprintf("Run %s %s in %s", m.runID, pal.paint(statusCol, string(s.Status)), total)
	if m.estimate > 0 && visibleWidth(head) < width-20 {
		head += " (estimate " + compactDuration(m.estimate) + ")"
	}
	out := []string{pal.paint(colBold, fitLeft(orText(m.title, "run")+" · "+m.environment, width)), head}
	idw, tw := 4, 5
	for _, st := range m.shown() {
		idw = max(idw, visibleWidth(phasePrefix(st.phase)+st.id))
		tw = max(tw, visibleWidth(st.title))
	}
	idw, tw = min(idw, width/4), min(tw, width/3)
	row := func(sym, col, id, title, status, dur, est, detail string) string {
		rest := fmt.Sprintf("%s  %s  %-10s %8s %9s  %s", padRight(fitLeft(id, idw), idw), padRight(fitLeft(title, tw), tw), status, dur, est, detail)
		return pal.paint(col, sym) + " " + strings.TrimRight(fitLeft(rest, width-2), " ")
	}
	out = append(out, row(" ", "", "STEP", "TITLE", "STATUS", "TOOK", "ESTIMATE", "DETAIL"))
	var failed []*runbook.StepState
	for _, ls := range m.shown() {
		st := m.stepState(ls)
		sym, col := statusSymbol(st)
		status, dur, est := "not run", "-", "-"
		if st != nil {
			status = string(st.Status)
			if !st.StartedAt.IsZero() {
				dur = compactDuration(st.Duration(now))
			}
			if st.Status == runbook.StepFailed {
				failed = append(failed, st)
			}
		}
		if ls.estimate > 0 {
			est = compactDuration(ls.estimate)
		}
		out = append(out, row(sym, col, phasePrefix(ls.phase)+ls.id, ls.title, status, dur, est, stepDetail(st)))
	}
	for _, st := range failed {
		out = append(out, "", pal.paint(colRed, fitLeft(fmt.Sprintf("%s%s failed: %s", phasePrefix(st.Phase), st.ID, orText(st.Error, "see its output")), width)))
		for _, l := range m.failedTail[phasePrefix(st.Phase)+st.ID] {
			out = append(out, pal.paint(colDim, "│ ")+fitLeft(l, width-2))
		}
	}
	if s.Waiting == nil && !s.Status.Finished() && s.Status != runbook.RunPending {
		out = append(out, "", fmt.Sprintf("The run stopped before its end; continue it with `opsbook resume %s`.", m.runID))
	}
	return append(out, "", fmt.Sprintf("Full log: opsbook show %s", m.runID))
}

// stepDetail is the last word on a step: the decision taken on it, why it
// was skipped, why it failed.
func stepDetail(st *runbook.StepState) string {
	if st == nil {
		return ""
	}
	var s string
	if n := len(st.Decisions); n > 0 {
		d := st.Decisions[n-1]
		s = d.Choice
		if d.Reason != "" {
			s += ": " + d.Reason
		}
		s += " (" + d.Actor + ")"
	}
	switch {
	case st.Status == runbook.StepSkipped && st.SkipReason != "" && s == "":
		s = st.SkipReason
	case st.Status == runbook.StepFailed && st.Error != "" && s == "":
		s = st.Error
	}
	return sanitizeLine(strings.ReplaceAll(s, "\n", " "))
}

// compactDuration is 850ms, 4.2s, 3m05s, 1h02m.
func compactDuration(d time.Duration) string {
	switch {
	case d < 0:
		d = 0
		fallthrough
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}

// sanitizeLine makes one line of a command's output safe to draw inside
// the region: escape sequences and control characters are dropped (they
// would move the cursor), a carriage return keeps what was written after
// it (progress bars), tabs become spaces.
func sanitizeLine(s string) string { return sanitizeOutput(s, false) }

// sanitizeOutput is the one sanitiser of recorded command output, for the
// live view and for the line views of run and show: every escape sequence
// and control character is neutralised (a title change, a screen clear, an
// OSC 8 link, a cursor move) except colours (SGR), which are kept when
// keepColor is set and then reset at the end of the line.
func sanitizeOutput(s string, keepColor bool) string {
	if plainText(s) && strings.IndexByte(s, '\n') < 0 {
		return s // printable ASCII: nothing to neutralise (the common line)
	}
	if i := strings.LastIndexByte(strings.TrimRight(s, "\r"), '\r'); i >= 0 {
		s = s[i+1:]
	}
	var b strings.Builder
	col := 0
	colored := false
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == 0x1b:
			n := escapeLen(s[i:])
			if keepColor && isSGR(s[i:i+n]) {
				b.WriteString(s[i : i+n])
				colored = true
			}
			i += n
			continue
		case r == '\t':
			pad := 8 - col%8
			b.WriteString(strings.Repeat(" ", pad))
			col += pad
		case r == utf8.RuneError && n == 1:
			b.WriteRune('�')
			col++
		case unicode.IsControl(r):
		default:
			b.WriteRune(r)
			col += runeWidth(r)
		}
		i += n
	}
	if colored {
		b.WriteString("\x1b[0m")
	}
	return b.String()
}

// isSGR reports whether an escape sequence only sets colours or text
// attributes: ESC [ digits and separators m.
func isSGR(seq string) bool {
	if len(seq) < 3 || seq[1] != '[' || seq[len(seq)-1] != 'm' {
		return false
	}
	for _, c := range []byte(seq[2 : len(seq)-1]) {
		if (c < '0' || c > '9') && c != ';' && c != ':' {
			return false
		}
	}
	return true
}

// outputColor reports whether the line views may keep the colours of
// command output on w: a terminal that is not TERM=dumb, without NO_COLOR.
func outputColor(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && liveColor() && os.Getenv("TERM") != "dumb" && term.IsTerminal(int(f.Fd()))
}

// escapeLen is the length of the escape sequence at the start of s.
func escapeLen(s string) int {
	if len(s) < 2 {
		return len(s)
	}
	switch s[1] {
	case '[': // CSI: parameters, then a final byte in @–~
		for i := 2; i < len(s); i++ {
			if s[i] >= 0x40 && s[i] <= 0x7e {
				return i + 1
			}
		}
		return len(s)
	case ']': // OSC: up to BEL or ST
		for i := 2; i < len(s); i++ {
			if s[i] == 0x07 {
				return i + 1
			}
			if s[i] == 0x1b && i+1 < len(s) && s[i+1] == '\\' {
				return i + 2
			}
		}
		return len(s)
	}
	return 2
}

// runeWidth is how many terminal columns r takes: two for East Asian wide
// characters (the Chinese section titles), none for combining marks.
func runeWidth(r rune) int {
	switch {
	case unicode.Is(unicode.Mn, r) || r == 0x200b:
		return 0
	case r >= 0x1100 && r <= 0x115f, r >= 0x2e80 && r <= 0xa4cf && r != 0x303f,
		r >= 0xac00 && r <= 0xd7a3, r >= 0xf900 && r <= 0xfaff, r >= 0xfe30 && r <= 0xfe4f,
		r >= 0xff00 && r <= 0xff60, r >= 0xffe0 && r <= 0xffe6,
		r >= 0x1f300 && r <= 0x1f64f, r >= 0x1f900 && r <= 0x1f9ff, r >= 0x20000 && r <= 0x3fffd:
		return 2
	}
	return 1
}

// visibleWidth is the columns s takes, ignoring escape sequences.
func visibleWidth(s string) int {
	w := 0
	for i := 0; i < len(s); {
		if s[i] == 0x1b {
			i += escapeLen(s[i:])
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		w += runeWidth(r)
		i += n
	}
	return w
}

// fitLeft cuts plain text s to at most w columns, marking a cut with "…".
func fitLeft(s string, w int) string {
	if w <= 0 {
		return ""
	}
	if visibleWidth(s) <= w {
		return s
	}
	var b strings.Builder
	cols := 0
	for _, r := range s {
		rw := runeWidth(r)
		if cols+rw > w-1 {
			break
		}
		b.WriteRune(r)
		cols += rw
	}
	b.WriteString("…")
	return b.String()
}

func padRight(s string, w int) string {
	if n := w - visibleWidth(s); n > 0 {
		return s + strings.Repeat(" ", n)
	}
	return s
}

// liveColor reports whether the live view may use colour: not when
// NO_COLOR is set (https://no-color.org).
func liveColor() bool {
	return os.Getenv("NO_COLOR") == ""
}
