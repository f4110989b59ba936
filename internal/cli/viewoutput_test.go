package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opsbook/opsbook/internal/engine"
	"github.com/opsbook/opsbook/internal/runbook"
)

// linesByLine is appendLines' definition: each line under its label, one
// appendLine at a time.
func linesByLine(label, text string) string {
	var out []byte
	for text != "" {
		line, rest, _ := strings.Cut(text, "\n")
		out = appendLine(out, label, line, false)
		text = rest
	}
	return string(out)
}

// Fault class: a word-at-a-time copy that drops, repeats or misplaces a
// byte or a label at a word boundary. appendLines must equal the line by
// line definition for every line length around the word size, every
// label length up to past the two-word prefix, and after any bytes the
// buffer already holds.
func TestAppendLinesEqualsLineByLine(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, label := range []string{"", "a", "s0", "step1", "s12345678", "s0@db-primary-1", "rollback/very-long-step@host"} {
		for trial := range 400 {
			var b strings.Builder
			maxLine := 1 + trial%40
			for b.Len() < 1+rng.IntN(300) {
				n := rng.IntN(maxLine)
				for range n {
					b.WriteByte(byte(0x20 + rng.IntN(0x7f-0x20)))
				}
				b.WriteByte('\n')
			}
			text := b.String()
			if trial%4 == 0 {
				// A byte that is not plain, anywhere in a word or the
				// tail: the copy must notice and sanitise line by line.
				raw := []byte(text)
				if i := rng.IntN(len(raw)); raw[i] != '\n' {
					raw[i] = []byte{0x1b, 0x7f, 0x80, 0xff, '\t', '\r', 0x00}[rng.IntN(7)]
				}
				text = string(raw)
			}
			head := []byte(strings.Repeat("h", trial%11))
			got := string(appendLines(bytes.Clone(head), label, text, false))
			if want := string(head) + linesByLine(label, text); got != want {
				t.Fatalf("label %q, text %q:\ngot  %q\nwant %q", label, text, got, want)
			}
		}
	}
}

// FuzzAppendLines checks appendLines against its definition on any input
// (non-plain text takes the sanitising path, which must agree too).
func FuzzAppendLines(f *testing.F) {
	f.Add("s0", "y\ny\ny\ny\ny\n")
	f.Add("s0@db1", "0123456789\n\n\nab\n")
	f.Add("x", "a\x1b[2Jb\n")
	f.Fuzz(func(t *testing.T, label, text string) {
		if i := strings.LastIndexByte(text, '\n'); i >= 0 {
			text = text[:i+1]
		} else {
			return
		}
		if got, want := string(appendLines(nil, label, text, false)), linesByLine(label, text); got != want {
			t.Fatalf("label %q, text %q:\ngot  %q\nwant %q", label, text, got, want)
		}
	})
}

// encoderLine is what the JSON view wrote for every event before
// jsonOutputEvent: json.Encoder's line.
func encoderLine(t testing.TB, ev runbook.Event) string {
	var b bytes.Buffer
	if err := json.NewEncoder(&b).Encode(ev); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// Fault class: a JSON view line that differs from what json.Encoder wrote
// (an escape missed or spelled differently, a field out of order or
// dropped), which consumers of `--output json` would see as a changed or
// broken format. Every ASCII byte, HTML-sensitive ones included, with and
// without data, host, actor and attempt.
func TestJSONOutputEventEqualsEncoder(t *testing.T) {
	var all strings.Builder
	for c := range 0x80 {
		all.WriteByte(byte(c))
	}
	at := time.Date(2026, 12, 3, 12, 0, 0, 123456789, time.UTC)
	for _, ev := range []runbook.Event{
		{RunID: "r-1", Seq: 7, Time: at, Type: runbook.EventStepOutput, Step: "s0", Stream: "stdout", Attempt: 1, Text: all.String()},
		{RunID: "r-1", Seq: 8, Time: at, Type: runbook.EventStepOutput, Step: "s0", Host: "db1", Actor: "a<b>", Stream: "stderr", Text: "y\ny\n",
			Data: map[string]string{"block": "check", "phase": "rollback", "z<&>": "\u2028"}},
		{RunID: "r-1", Seq: 9, Time: at, Type: runbook.EventStepOutput, Step: "s0", Stream: "stdout"},
		{RunID: "r-1", Seq: 10, Time: at, Type: runbook.EventStepOutput, Step: "s0", Stream: "stdout", Text: `"quoted" \back\slash </script>`},
	} {
		got, ok := jsonOutputEvent([]byte("left"), ev)
		if !ok {
			t.Fatalf("event %d: not encoded", ev.Seq)
		}
		if want := "left" + encoderLine(t, ev); string(got) != want {
			t.Errorf("event %d:\ngot  %s\nwant %s", ev.Seq, got, want)
		}
	}
	// Not ASCII: left to the encoder, the buffer untouched.
	ev := runbook.Event{RunID: "r-1", Seq: 11, Time: at, Type: runbook.EventStepOutput, Text: "caf\xc3\xa9 \xff"}
	if got, ok := jsonOutputEvent([]byte("left"), ev); ok || string(got) != "left" {
		t.Errorf("non-ASCII text: got %q, %v; want it left to the encoder", got, ok)
	}
}

func FuzzJSONOutputEvent(f *testing.F) {
	f.Add("y\ny\n", "k", "v<")
	f.Add("\x00\x1f\x7f\"\\", "", "")
	f.Fuzz(func(t *testing.T, text, k, v string) {
		ev := runbook.Event{RunID: "r-1", Seq: 1, Time: time.Unix(1, 2).UTC(), Type: runbook.EventStepOutput, Step: "s", Stream: "stdout", Text: text}
		if k != "" {
			ev.Data = map[string]string{k: v}
		}
		got, ok := jsonOutputEvent(nil, ev)
		if !ok {
			for i := range len(text) {
				if text[i] >= 0x80 {
					return
				}
			}
			t.Fatalf("ASCII text %q not encoded", text)
		}
		if want := encoderLine(t, ev); string(got) != want {
			t.Fatalf("text %q data %q=%q:\ngot  %s\nwant %s", text, k, v, got, want)
		}
	})
}

// The JSON view writes output events through jsonOutputEvent and the rest
// through the encoder; a reader sees one valid event per line either way.
func TestJSONViewOutputLines(t *testing.T) {
	var out bytes.Buffer
	v := newRunView(&out, "json", &engine.Plan{Document: &runbook.Document{}})
	at := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	evs := []runbook.Event{
		{RunID: "r-1", Seq: 1, Time: at, Type: runbook.EventStepStarted, Step: "s0"},
		{RunID: "r-1", Seq: 2, Time: at, Type: runbook.EventStepOutput, Step: "s0", Stream: "stdout", Text: "a\n<b>\n"},
		{RunID: "r-1", Seq: 3, Time: at, Type: runbook.EventStepOutput, Step: "s0", Stream: "stdout", Text: "é\n"},
	}
	var want strings.Builder
	for _, ev := range evs {
		v.event(ev)
		want.WriteString(encoderLine(t, ev))
	}
	v.flush()
	if out.String() != want.String() {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want.String())
	}
}

// gateWriter blocks every write until open is closed.
type gateWriter struct {
	open chan struct{}
	mu   sync.Mutex
	b    strings.Builder
}

func (g *gateWriter) Write(p []byte) (int, error) {
	<-g.open
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.b.Write(p)
}

// Output is written by the view's printer goroutine; fault class: an
// event or a prompt shown ahead of output recorded before it. With the
// terminal stuck (a writer that blocks), a step.finished event must not
// be handled before the output queued ahead of it is written; once the
// writer moves, everything comes out in order.
func TestRunViewOutputBeforeWhatFollows(t *testing.T) {
	g := &gateWriter{open: make(chan struct{})}
	v := newView(g, "text", map[string]string{"s": "Step"})
	var want strings.Builder
	for i := range printQueue { // all fit in the queue while the writer is stuck
		v.event(runbook.Event{Type: runbook.EventStepOutput, Step: "s", Stream: "stdout", Text: fmt.Sprintf("line %d\n", i)})
		fmt.Fprintf(&want, "[s] line %d\n", i)
	}
	finished := make(chan struct{})
	go func() {
		v.event(runbook.Event{Type: runbook.EventStepFinished, Step: "s", Data: map[string]string{"status": "succeeded"}})
		close(finished)
	}()
	// Time for a wrong view to get ahead; a right one cannot, however long.
	time.Sleep(100 * time.Millisecond)
	select {
	case <-finished:
		t.Fatal("step.finished was handled while the output before it was still unwritten")
	default:
	}
	close(g.open)
	<-finished
	v.flush()
	got := g.b.String()
	if !strings.HasPrefix(got, want.String()) || got[want.Len():] != "<- [s] succeeded\n" {
		t.Fatalf("output and the event after it out of order:\n%q\nwant prefix %q", got, want.String())
	}
}

// Output pouring into a view written to a pipe widens the pipe to 1 MiB
// (a chunk's lines in one write); a view on a regular file is left alone.
func TestRunViewWidensAPipe(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	go io.Copy(io.Discard, r)
	v := newView(w, "text", map[string]string{})
	v.event(runbook.Event{Type: runbook.EventStepOutput, Step: "s", Stream: "stdout", Text: strings.Repeat("y\n", 32<<10)})
	v.flush()
	const fGetPipeSize = 1032 // F_GETPIPE_SZ, fcntl(2)
	size, _, errno := syscall.Syscall(syscall.SYS_FCNTL, w.Fd(), fGetPipeSize, 0)
	if errno != 0 || size != 1<<20 {
		t.Errorf("pipe size %d (%v), want 1 MiB", size, errno)
	}

	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	v = newView(f, "text", map[string]string{})
	v.event(runbook.Event{Type: runbook.EventStepOutput, Step: "s", Stream: "stdout", Text: strings.Repeat("y\n", 32<<10)})
	v.flush()
	if fi, err := f.Stat(); err != nil || fi.Size() != 32<<10*6 {
		t.Errorf("file view: %v bytes, want %d", fi.Size(), 32<<10*6)
	}
}
