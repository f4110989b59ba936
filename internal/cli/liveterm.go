package cli

import (
	"context"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/opsbook/opsbook/internal/runbook"
)

// liveTerminal returns stdout when the live view should draw on it: text
// output to a terminal that can move its cursor (not TERM=dumb).
func liveTerminal(e *env, output string) (*os.File, bool) {
	if output != "text" || os.Getenv("TERM") == "dumb" {
		return nil, false
	}
	f, ok := e.stdout.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil, false
	}
	return f, true
}

// liveRedraw is the redraw period (10 frames a second at most).
const liveRedraw = 100 * time.Millisecond

// liveTerm draws a liveModel at the bottom of a terminal and redraws it in
// place: the cursor goes back up over the region (up rows), each line is
// cleared and written again, and whatever is left below is erased. Events
// only update the model; a ticker draws, so a fast command's output costs
// the run nothing but a string append.
type liveTerm struct {
	mu     sync.Mutex
	out    *os.File
	color  bool
	m      *liveModel
	width  int
	height int
	above  []int // widths of the region's lines above the cursor: the rows they take change when the terminal is resized
	last   []string
	frozen bool // a prompt is reading an answer: the screen must stay still
	// cancelNote is shown when the command's context ends (Ctrl-C).
	cancelNote string
	observed   int // events seen since start
	stop       chan struct{}
	done       chan struct{}
	now        func() time.Time
}

func newLiveTerm(out *os.File, m *liveModel) *liveTerm {
	t := &liveTerm{out: out, color: liveColor(), m: m, stop: make(chan struct{}), done: make(chan struct{}), now: time.Now,
		cancelNote: "cancelling: stopping the running step and recording the cancellation…"}
	t.resize()
	return t
}

func (t *liveTerm) resize() {
	w, h, err := term.GetSize(int(t.out.Fd()))
	if err != nil || w <= 0 || h <= 0 {
		w, h = 80, 24
	}
	t.width, t.height = w, h
}

// start draws the first frame and keeps redrawing until finish. When ctx
// ends (Ctrl-C) the region says the run is being cancelled: stopping the
// running step's processes takes a moment.
func (t *liveTerm) start(ctx context.Context) {
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	t.mu.Lock()
	t.drawLocked(false)
	t.mu.Unlock()
	go func() {
		defer close(t.done)
		defer signal.Stop(winch)
		tick := time.NewTicker(liveRedraw)
		defer tick.Stop()
		cancelled := ctx.Done()
		for {
			select {
			case <-t.stop:
				return
			case <-cancelled:
				cancelled = nil
				t.setNotice(t.cancelNote)
			case <-winch:
				t.mu.Lock()
				t.resize()
				if !t.frozen {
					// Terminals re-wrap (and may scroll away) what they show
					// when resized, so where the region starts is no longer
					// known: draw it again from the top of the screen.
					io.WriteString(t.out, "\x1b[H\x1b[J")
					t.above, t.last = nil, nil
					t.drawLocked(false)
				}
				t.mu.Unlock()
			case <-tick.C:
				t.mu.Lock()
				if !t.frozen {
					t.drawLocked(false)
				}
				t.mu.Unlock()
			}
		}
	}()
}

// event is the engine's (or the server stream's) observer.
func (t *liveTerm) event(ev runbook.Event) {
	t.mu.Lock()
	t.m.apply(ev)
	t.observed++
	t.mu.Unlock()
}

// up is how many rows the cursor is below the region's first line, at the
// current width: a terminal re-wraps the lines it shows when it is resized.
func (t *liveTerm) up() int {
	n := 0
	for _, w := range t.above {
		n += max(1, (w+t.width-1)/t.width)
	}
	return n
}

// moveToTop is the escape sequence that puts the cursor at the start of
// the region.
func (t *liveTerm) moveToTop() string {
	if up := t.up(); up > 0 {
		return "\r\x1b[" + strconv.Itoa(up) + "A"
	}
	return "\r"
}

// drawLocked redraws the region unless nothing changed. With openEnd the
// last line is a question: the cursor stays at its end for the answer.
func (t *liveTerm) drawLocked(openEnd bool) {
	frame := renderFrame(t.m, t.now(), t.width, t.height, t.color)
	if !openEnd && slices.Equal(frame, t.last) {
		return
	}
	var b strings.Builder
	b.WriteString(t.moveToTop())
	t.above = t.above[:0]
	for i, l := range frame {
		b.WriteString("\x1b[2K")
		b.WriteString(l)
		if i < len(frame)-1 || !openEnd {
			b.WriteString("\n")
			t.above = append(t.above, visibleWidth(l))
		}
	}
	b.WriteString("\x1b[J")
	io.WriteString(t.out, b.String())
	t.last = frame
}

// askLine shows question as the region's last line and returns the line
// the operator types (terminal echo shows it after the question). The
// region stays still meanwhile; ctx ending (the question was answered
// elsewhere) abandons the question.
func (t *liveTerm) askLine(ctx context.Context, question string, in <-chan lineRead) (string, error) {
	t.mu.Lock()
	t.m.prompt = []string{question}
	t.drawLocked(true)
	t.frozen = true
	qw := visibleWidth(t.last[len(t.last)-1])
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		t.frozen = false
		t.m.prompt = nil
		t.last = nil
		t.drawLocked(false)
		t.mu.Unlock()
	}()
	select {
	case <-ctx.Done():
		return "", ctx.Err()
	case r := <-in:
		t.mu.Lock()
		// The answer and its Enter moved the cursor below the question.
		t.above = append(t.above, qw+visibleWidth(r.text))
		t.mu.Unlock()
		if r.err != nil && r.text == "" {
			return "", r.err
		}
		return strings.TrimSpace(r.text), nil
	}
}

// setNotice shows news for the operator (a refused answer) in the region.
func (t *liveTerm) setNotice(s string) {
	t.mu.Lock()
	t.m.notice = s
	t.mu.Unlock()
}

// setReport shows the state of the reporting to a server (run --local)
// until it is set again ("" once the server has caught up).
func (t *liveTerm) setReport(s string) {
	t.mu.Lock()
	t.m.report = s
	t.mu.Unlock()
}

// finish stops redrawing, replaces the region with the run's summary and
// leaves the cursor below it.
func (t *liveTerm) finish() {
	close(t.stop)
	<-t.done
	t.mu.Lock()
	defer t.mu.Unlock()
	var b strings.Builder
	b.WriteString(t.moveToTop())
	b.WriteString("\x1b[J")
	// A run that could not be executed at all (held by another process)
	// has nothing to sum up; the error says why.
	if t.observed > 0 {
		for _, l := range renderSummary(t.m, t.now(), t.width, t.color) {
			b.WriteString(l + "\n")
		}
	}
	io.WriteString(t.out, b.String())
	t.above = nil
}

// lineRead is one line read from stdin.
type lineRead struct {
	text string
	err  error
}

var (
	stdinChOnce sync.Once
	stdinCh     chan lineRead
)

// stdinLineChan is every line of stdin, read by one goroutine, so a
// question abandoned (answered elsewhere) does not swallow the answer to
// the next one.
func stdinLineChan(e *env) <-chan lineRead {
	stdinChOnce.Do(func() {
		stdinCh = make(chan lineRead)
		r := stdinLines(e)
		go func() {
			for {
				s, err := r.ReadString('\n')
				stdinCh <- lineRead{strings.TrimRight(s, "\r\n"), err}
				for err != nil { // every later question hears that stdin is closed
					stdinCh <- lineRead{"", err}
				}
			}
		}()
	})
	return stdinCh
}

// decideLive asks the run's question in the live view's region: the
// region shows the criteria, the approvals still needed, the options; the
// operator types the answer on the region's last line.
func (d *cliDecider) decideLive(ctx context.Context, w runbook.Waiting, lastErr error, req runbook.DecisionRequest) (runbook.DecisionRequest, error) {
	if lastErr != nil {
		d.live.setNotice(lastErr.Error())
	}
	in := stdinLineChan(d.e)
	ask := func(q string) (string, error) { return d.live.askLine(ctx, q, in) }
	var err error
	switch w.Kind {
	case runbook.WaitKindGate:
		for req.Choice != runbook.DecisionGo && req.Choice != runbook.DecisionNoGo {
			if req.Choice, err = ask("Decide: type go or no-go and Enter › "); err != nil {
				return req, err
			}
			req.Choice = strings.ToLower(req.Choice)
		}
		for req.Reason == "" {
			if req.Reason, err = ask("Reason for " + req.Choice + " (recorded with your decision) › "); err != nil {
				return req, err
			}
		}
	case runbook.WaitKindManual:
		if req.Reason, err = ask("Press Enter when done (an optional note first) › "); err != nil {
			return req, err
		}
	case runbook.WaitKindAsk:
		for !contains(w.Options, req.Choice) {
			if req.Choice, err = ask("Choose " + strings.Join(w.Options, " / ") + " › "); err != nil {
				return req, err
			}
			req.Choice = strings.ToLower(req.Choice)
		}
		if req.Reason, err = ask("Reason for " + req.Choice + " (optional, recorded) › "); err != nil {
			return req, err
		}
	}
	d.live.setNotice("")
	return req, nil
}
