package cli

import (
	"bytes"
	"flag"
	"fmt"
	"github.com/opsbook/opsbook/internal/engine"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/opsbook/opsbook/internal/runbook"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

var t0 = time.Date(2026, 3, 1, 3, 0, 0, 0, time.UTC)

// liveDoc is a runbook of five steps with estimates, a gate and a manual step.
func liveDoc() *runbook.Document {
	return &runbook.Document{
		Title: "Upgrade PostgreSQL 12 to 15",
		Front: runbook.FrontMatter{Estimate: 45 * time.Minute},
		Steps: []runbook.Step{
			{ID: "backup", Title: "Take a base backup", Estimate: 10 * time.Minute},
			{ID: "go", Title: "Go/No-Go before the switch"},
			{ID: "drain", Title: "Drain the connection pool"},
			{ID: "upgrade", Title: "Run pg_upgrade", Estimate: 20 * time.Minute},
			{ID: "verify", Title: "Check the replicas 检查副本", Estimate: time.Minute},
		},
	}
}

// events builds a run's log: each item is a type, a step, seconds after
// t0, and key=value data or text=….
func events(items ...[]string) []runbook.Event {
	var evs []runbook.Event
	for i, it := range items {
		var sec float64
		fmt.Sscan(it[2], &sec)
		ev := runbook.Event{RunID: "r-01TEST", Seq: int64(i + 1), Type: runbook.EventType(it[0]), Step: it[1],
			Time: t0.Add(time.Duration(sec * float64(time.Second))), Data: map[string]string{}}
		for _, kv := range it[3:] {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "text":
				ev.Text = v
			case "actor":
				ev.Actor = v
			case "attempt":
				fmt.Sscan(v, &ev.Attempt)
			default:
				ev.Data[k] = v
			}
		}
		evs = append(evs, ev)
	}
	return evs
}

func ev(typ runbook.EventType, step string, at string, rest ...string) []string {
	return append([]string{string(typ), step, at}, rest...)
}

var (
	started    = ev(runbook.EventRunStarted, "", "0", "env=production", "text=Upgrade PostgreSQL 12 to 15", "user=ana")
	backupRun  = ev(runbook.EventStepStarted, "backup", "1", "attempt=1")
	backupOut  = ev(runbook.EventStepOutput, "backup", "2", "text=pg_basebackup: starting\n\x1b[32mcopied 10%\x1b[0m\rcopied 55%\npassword=*** ok\n\ttabbed\nwaiting for WAL")
	backupDone = ev(runbook.EventStepFinished, "backup", "301", "status=succeeded", "duration_ms=300000")
	gateWait   = ev(runbook.EventGateWaiting, "go", "302", "approvers=2", "text=Go when the backup is verified\nand replication lag is under 1 s.")
	gateGo     = ev(runbook.EventGateDecided, "go", "400", "decision=go", "actor=ana", "text=backup verified")
)

func TestRenderFrameGolden(t *testing.T) {
	doc := liveDoc()
	long := &runbook.Document{Title: "Rotate every node"}
	for i := range 30 {
		long.Steps = append(long.Steps, runbook.Step{ID: fmt.Sprintf("node-%02d", i+1), Title: "Rotate the node", Estimate: 30 * time.Second})
	}
	var longEvents [][]string
	longEvents = append(longEvents, started)
	for i := range 17 {
		id := fmt.Sprintf("node-%02d", i+1)
		at := fmt.Sprint(i * 40)
		longEvents = append(longEvents, ev(runbook.EventStepStarted, id, at, "attempt=1"))
		if i < 16 {
			longEvents = append(longEvents, ev(runbook.EventStepFinished, id, fmt.Sprint(i*40+35), "status=succeeded"))
		}
	}
	tests := []struct {
		name          string
		doc           *runbook.Document
		log           [][]string
		now           float64
		width, height int
		color         bool
		notice        string
		prompt        string
	}{
		{name: "running", doc: doc, log: [][]string{started, backupRun, backupOut}, now: 62.5, width: 80, height: 24},
		{name: "running-narrow", doc: doc, log: [][]string{started, backupRun, backupOut}, now: 62.5, width: 40, height: 12},
		{name: "running-color", doc: doc, log: [][]string{started, backupRun, backupOut}, now: 700, width: 80, height: 24, color: true},
		{name: "gate-one-of-two", doc: doc, log: [][]string{started, backupRun, backupOut, backupDone, gateWait, gateGo}, now: 410, width: 80, height: 24,
			prompt: "Decide: type go or no-go and Enter › "},
		{name: "manual", doc: doc, log: [][]string{started, backupRun, backupDone, gateWait, gateGo,
			ev(runbook.EventGateDecided, "go", "401", "decision=go", "actor=bo", "text=lag 0.2 s"),
			ev(runbook.EventStepFinished, "go", "401", "status=succeeded"),
			ev(runbook.EventManualWaiting, "drain", "402", "text=Set the pool to drain in the console."),
		}, now: 500, width: 80, height: 24, prompt: "Press Enter when done (an optional note first) › "},
		{name: "ask-refused", doc: doc, log: [][]string{started, backupRun, backupDone,
			ev(runbook.EventStepStarted, "upgrade", "310", "attempt=1"),
			ev(runbook.EventStepOutput, "upgrade", "311", "text=Performing Consistency Checks\nerror: old cluster still running\n"),
			ev(runbook.EventStepFinished, "upgrade", "312", "status=failed", "exit_code=1", "text=exit status 1"),
			ev(runbook.EventAskWaiting, "upgrade", "312", "options=retry,skip,abort,rollback", "text=step upgrade failed: exit status 1. What now?"),
		}, now: 320, width: 80, height: 24, notice: "step upgrade: choose one of retry, skip, abort, rollback, not \"again\"", prompt: "Choose retry / skip / abort / rollback › "},
		{name: "long-list", doc: long, log: longEvents, now: 650, width: 72, height: 14},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := newLiveModel("r-01TEST", tc.doc, nil)
			for _, e := range events(tc.log...) {
				m.apply(e)
			}
			m.notice = tc.notice
			if tc.prompt != "" {
				m.prompt = []string{tc.prompt}
			}
			now := t0.Add(time.Duration(tc.now * float64(time.Second)))
			frame := renderFrame(m, now, tc.width, tc.height, tc.color)
			if len(frame) > tc.height-1 {
				t.Errorf("frame has %d lines for a terminal of %d", len(frame), tc.height)
			}
			for i, l := range frame {
				if w := visibleWidth(l); w > tc.width-1 {
					t.Errorf("line %d is %d columns wide in a terminal of %d: %q", i, w, tc.width, l)
				}
				if strings.ContainsAny(l, "\r\n\t") {
					t.Errorf("line %d has a control character: %q", i, l)
				}
			}
			golden(t, filepath.Join("testdata", "live", tc.name+".golden"), strings.Join(frame, "\n")+"\n")
		})
	}
}

func TestRenderSummaryGolden(t *testing.T) {
	doc := liveDoc()
	rollback := &runbook.Document{Steps: []runbook.Step{{ID: "restore", Title: "Restore the base backup", Estimate: 15 * time.Minute}}}
	tests := []struct {
		name string
		log  [][]string
	}{
		{name: "succeeded", log: [][]string{started, backupRun, backupOut, backupDone, gateWait, gateGo,
			ev(runbook.EventGateDecided, "go", "401", "decision=go", "actor=bo", "text=lag 0.2 s"),
			ev(runbook.EventStepFinished, "go", "401", "status=succeeded"),
			ev(runbook.EventManualWaiting, "drain", "402", "text=Drain."),
			ev(runbook.EventManualDone, "drain", "460", "actor=ana"),
			ev(runbook.EventStepFinished, "drain", "460", "status=succeeded"),
			ev(runbook.EventStepSkipped, "upgrade", "461", "text=--from verify"),
			ev(runbook.EventStepStarted, "verify", "462", "attempt=1"),
			ev(runbook.EventStepFinished, "verify", "530", "status=succeeded"),
			ev(runbook.EventRunFinished, "", "530", "status=succeeded"),
		}},
		{name: "rolled-back", log: [][]string{started, backupRun, backupDone,
			ev(runbook.EventStepStarted, "upgrade", "310", "attempt=1"),
			ev(runbook.EventStepOutput, "upgrade", "311", "text=line 1\nline 2\nline 3\nline 4\nline 5\nline 6\nerror: old cluster still running\n"),
			ev(runbook.EventStepFinished, "upgrade", "2000", "status=failed", "exit_code=1", "text=exit status 1"),
			ev(runbook.EventRollbackStart, "", "2001", "text=upgrade failed"),
			ev(runbook.EventStepStarted, "restore", "2001", "attempt=1", "phase=rollback"),
			ev(runbook.EventStepFinished, "restore", "2500", "status=succeeded", "phase=rollback"),
			ev(runbook.EventRollbackFinish, "", "2500", "status=succeeded"),
			ev(runbook.EventRunFinished, "", "2500", "status=rolled_back"),
		}},
		{name: "interrupted", log: [][]string{started, backupRun, backupOut}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := newLiveModel("r-01TEST", doc, rollback)
			for _, e := range events(tc.log...) {
				m.apply(e)
			}
			got := renderSummary(m, t0.Add(time.Hour), 100, false)
			golden(t, filepath.Join("testdata", "live", "summary-"+tc.name+".golden"), strings.Join(got, "\n")+"\n")
		})
	}
}

func TestSanitizeLine(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"\x1b[1;31mred\x1b[0m text", "red text"},
		{"10%\r55%\r100%", "100%"},
		{"done\r", "done"},
		{"a\tb", "a       b"},
		{"bell\x07 and \x1b]0;title\x07osc", "bell and osc"},
		{"cursor\x1b[2Aup", "cursorup"},
		{"bad \xff byte", "bad � byte"},
		{"宽字符\tx", "宽字符  x"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if got := sanitizeLine(tc.in); got != tc.want {
				t.Errorf("sanitizeLine(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestFitLeftWidth(t *testing.T) {
	tests := []struct {
		in   string
		w    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"much too long", 8, "much to…"},
		{"检查副本检查", 7, "检查副…"},
		{"anything", 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got := fitLeft(tc.in, tc.w)
			if got != tc.want || visibleWidth(got) > max(tc.w, 0) {
				t.Errorf("fitLeft(%q, %d) = %q (%d columns), want %q", tc.in, tc.w, got, visibleWidth(got), tc.want)
			}
		})
	}
}

func TestLiveModelBoundsTail(t *testing.T) {
	m := newLiveModel("r", liveDoc(), nil)
	m.apply(runbook.Event{Seq: 1, Type: runbook.EventStepStarted, Step: "backup", Time: t0})
	for i := range 1000 {
		m.apply(runbook.Event{Seq: int64(i + 2), Type: runbook.EventStepOutput, Step: "backup", Time: t0, Text: fmt.Sprintf("line %d\n", i)})
	}
	m.apply(runbook.Event{Seq: 2000, Type: runbook.EventStepOutput, Step: "backup", Time: t0, Text: strings.Repeat("x", 3*maxViewLine)})
	if len(m.tail) >= 2*maxTailLines {
		t.Errorf("the model holds %d lines; want fewer than %d", len(m.tail), 2*maxTailLines)
	}
	if tail := m.tailLines(); len(tail) != maxTailLines+1 || tail[len(tail)-2] != "line 999" {
		t.Errorf("the view shows %d lines, the complete ones ending %q; want %d and the unfinished one, ending with line 999", len(tail), tail[len(tail)-2], maxTailLines)
	}
	if len(m.partial) > maxViewLine {
		t.Errorf("an endless line is held whole: %d bytes", len(m.partial))
	}
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		must(t, os.MkdirAll(filepath.Dir(path), 0o755))
		must(t, os.WriteFile(path, []byte(got), 0o644))
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run the test with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (run with -update to accept):\n--- got\n%s--- want\n%s", path, got, want)
	}
}

// A chunk of many short lines (`yes`) only has its last lines looked at;
// the view must show the same tail as when the same output arrives a
// line, or a few bytes, at a time: the skipped lines, and the unfinished
// line they continued, must not leak in, nor a line go missing.
func TestLiveModelChunkedOutputSameTail(t *testing.T) {
	var b strings.Builder
	b.WriteString("head-of-first-line ")
	for i := range 3 * maxTailLines {
		fmt.Fprintf(&b, "line %d\n", i)
	}
	b.WriteString("unfinished")
	out := b.String()
	feed := func(sizes ...int) []string {
		m := newLiveModel("r", liveDoc(), nil)
		m.apply(runbook.Event{Seq: 1, Type: runbook.EventStepStarted, Step: "backup", Time: t0})
		m.apply(runbook.Event{Seq: 2, Type: runbook.EventStepOutput, Step: "backup", Time: t0, Text: "earlier partial, "})
		seq, rest := int64(3), out
		for i := 0; rest != ""; i++ {
			n := min(sizes[i%len(sizes)], len(rest))
			m.apply(runbook.Event{Seq: seq, Type: runbook.EventStepOutput, Step: "backup", Time: t0, Text: rest[:n]})
			seq, rest = seq+1, rest[n:]
		}
		return m.tailLines()
	}
	want := feed(1, 2, 3) // a few bytes at a time: no line is ever skipped
	if len(want) != maxTailLines+1 || want[0] != fmt.Sprintf("line %d", 2*maxTailLines) || want[maxTailLines] != "unfinished" {
		t.Fatalf("byte-wise feeding shows %d lines from %q to %q", len(want), want[0], want[len(want)-1])
	}
	for _, sizes := range [][]int{{len(out)}, {4096}, {len(out) / 2}, {len(out) - 5}, {7, 5000}} {
		if got := feed(sizes...); !reflect.DeepEqual(got, want) {
			t.Errorf("chunks of %v: the view shows %d lines from %q to %q; want %d from %q", sizes, len(got), got[0], got[len(got)-1], len(want), want[0])
		}
	}
	// Fewer lines than the tail holds: the first one continues the
	// unfinished line before the chunk.
	m := newLiveModel("r", liveDoc(), nil)
	m.apply(runbook.Event{Seq: 1, Type: runbook.EventStepStarted, Step: "backup", Time: t0})
	m.apply(runbook.Event{Seq: 2, Type: runbook.EventStepOutput, Step: "backup", Time: t0, Text: "a"})
	m.apply(runbook.Event{Seq: 3, Type: runbook.EventStepOutput, Step: "backup", Time: t0, Text: "b\nc\nd"})
	if got := m.tailLines(); !reflect.DeepEqual(got, []string{"ab", "c", "d"}) {
		t.Errorf("tail = %q, want [ab c d]", got)
	}
}

// countingWriter counts Write calls.
type countingWriter struct {
	bytes.Buffer
	writes int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.writes++
	return w.Buffer.Write(p)
}

// The text view writes the lines of one output event in one call: a
// write per line (a system call each on a terminal or pipe) made a step
// printing short lines record at a few MB/s. The lines are those of the
// line-by-line view, unfinished ones and over-long ones included.
func TestRunViewWritesAChunkAtOnce(t *testing.T) {
	w := &countingWriter{}
	v := newRunView(w, "text", &engine.Plan{Document: liveDoc()})
	var text strings.Builder
	var want strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&text, "y%d\n", i)
		fmt.Fprintf(&want, "[backup] y%d\n", i)
	}
	text.WriteString("unfinished ")
	v.event(runbook.Event{Type: runbook.EventStepOutput, Step: "backup", Stream: "stdout", Text: text.String()})
	v.waitPrinted()
	if w.writes != 1 || w.String() != want.String() {
		t.Fatalf("%d writes of %d bytes; want 1 write of the 1000 lines", w.writes, w.Len())
	}
	long := strings.Repeat("x", maxViewLine)
	v.event(runbook.Event{Type: runbook.EventStepOutput, Step: "backup", Stream: "stdout", Text: "end\n" + long + "\n" + long[:10]})
	v.waitPrinted()
	want.WriteString("[backup] unfinished end\n[backup] " + long + "\n")
	if w.writes != 2 || w.String() != want.String() {
		t.Fatalf("%d writes; output ends %q", w.writes, w.String()[max(w.Len()-80, 0):])
	}
	v.flush()
	if want.WriteString("[backup] " + long[:10] + "\n"); w.String() != want.String() {
		t.Fatalf("after flush, output ends %q", w.String()[max(w.Len()-80, 0):])
	}
}
