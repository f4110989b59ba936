package ui

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/store"
)

// split is the rows of evs in one pass, each as "host│text" ("m:type" for
// a marker, "…" after an unfinished one).
func split(evs []runbook.Event) []string {
	var out []string
	s := logSplitter{emit: func(r logRow) { out = append(out, rowString(r)) }}
	for i := range evs {
		s.feed(&evs[i])
	}
	s.flush()
	return out
}

func rowString(r logRow) string {
	if r.kind == 'm' {
		return "m:" + string(r.marker.Type)
	}
	line := r.host + "│" + r.text
	if r.kind == 'e' {
		line = "E " + line
	}
	return line
}

func output(host, stream, text string) runbook.Event {
	return runbook.Event{Type: runbook.EventStepOutput, Step: "dump", Host: host, Stream: stream, Text: text}
}

// Fault: output chunked anywhere. However the output is cut into events,
// every line is one row, whole.
func TestLogChunkBoundaries(t *testing.T) {
	const text = "first line\nsecond <line>\nthird line\n"
	want := "db1│first line\ndb1│second <line>\ndb1│third line"
	for cut1 := 0; cut1 <= len(text); cut1++ {
		for cut2 := cut1; cut2 <= len(text); cut2 += 3 {
			evs := []runbook.Event{output("db1", "stdout", text[:cut1]), output("db1", "stdout", text[cut1:cut2]), output("db1", "stdout", text[cut2:])}
			if got := strings.Join(split(evs), "\n"); got != want {
				t.Fatalf("cut at %d,%d:\n%q\nwant\n%q", cut1, cut2, got, want)
			}
		}
	}
}

func TestLogInterleaving(t *testing.T) {
	cases := []struct {
		name string
		evs  []runbook.Event
		want string
	}{
		{name: "unfinished line ended by another host",
			evs:  []runbook.Event{output("db1", "stdout", "copying"), output("db2", "stdout", "done\n"), output("db1", "stdout", " 40%\n")},
			want: "db1│copying\ndb2│done\ndb1│ 40%"},
		{name: "stderr between stdout parts",
			evs:  []runbook.Event{output("", "stdout", "a"), output("", "stderr", "warn\n"), output("", "stdout", "b\n")},
			want: "│a\nE │warn\n│b"},
		{name: "marker after an unfinished line",
			evs: []runbook.Event{output("web1", "stdout", "no newline at the end"),
				{Type: runbook.EventStepFinished, Step: "dump", Host: "web1", Data: map[string]string{"status": "succeeded"}}},
			want: "web1│no newline at the end\nm:step.finished"},
		{name: "empty output event changes nothing",
			evs:  []runbook.Event{output("web1", "stdout", "par"), output("web1", "stdout", ""), output("web1", "stdout", "tial\n")},
			want: "web1│partial"},
		{name: "empty lines are rows",
			evs:  []runbook.Event{output("", "stdout", "\n\nx\n")},
			want: "│\n│\n│x"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := strings.Join(split(c.evs), "\n"); got != c.want {
				t.Errorf("rows:\n%q\nwant\n%q", got, c.want)
			}
		})
	}
}

// testLog stores a run whose log is evs in a fresh SQLite store.
func testLog(t testing.TB, evs []runbook.Event) (*store.Store, string) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "log.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	run := &runbook.Run{Runbook: "ops/runbooks/x.md", Environment: "dev"}
	if err := st.CreateRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(evs); i += 200 {
		if _, err := st.AppendEvents(ctx, run.ID, evs[i:min(i+200, len(evs))]...); err != nil {
			t.Fatal(err)
		}
	}
	return st, run.ID
}

// Fault: the log loses output (the page once kept 5 of a 50,000-line
// step's lines). A log with a 50,000-line chunk, lines cut across events,
// interleaved hosts and streams, markers, and a 3 MB line that never ends
// is read back page by page: every row comes back exactly once, in order,
// identical to reading the whole log at once, and every page but the open
// one has the rows the index promised.
func TestLogPagesLoseNothing(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	var evs []runbook.Event
	at := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	add := func(ev runbook.Event) {
		at = at.Add(time.Millisecond)
		ev.Time = at
		evs = append(evs, ev)
	}
	start := func(step string) {
		add(runbook.Event{Type: runbook.EventStepStarted, Step: step, Attempt: 1})
	}
	start("big")
	var big strings.Builder
	for i := 1; i <= 50000; i++ {
		fmt.Fprintf(&big, "big line %d\n", i)
	}
	add(runbook.Event{Type: runbook.EventStepOutput, Step: "big", Stream: "stdout", Text: big.String()})
	add(runbook.Event{Type: runbook.EventStepFinished, Step: "big", Data: map[string]string{"status": "succeeded"}})
	start("mixed")
	var text strings.Builder
	for i := 1; i <= 20000; i++ {
		fmt.Fprintf(&text, "mixed \x1b[32mline\x1b[0m %d\n", i)
	}
	for rest := text.String(); rest != ""; {
		n := min(len(rest), 1+rnd.IntN(300))
		stream := "stdout"
		if rnd.IntN(5) == 0 {
			stream = "stderr"
		}
		add(runbook.Event{Type: runbook.EventStepOutput, Step: "mixed", Stream: stream, Text: rest[:n]})
		rest = rest[n:]
		if rnd.IntN(50) == 0 {
			add(runbook.Event{Type: runbook.EventAnomaly, Actor: "alice", Text: "odd"})
		}
	}
	add(runbook.Event{Type: runbook.EventStepFinished, Step: "mixed", Data: map[string]string{"status": "failed"}})
	start("endless")
	for range 48 {
		add(runbook.Event{Type: runbook.EventStepOutput, Step: "endless", Stream: "stdout", Text: strings.Repeat("x", 64<<10)})
	}
	add(runbook.Event{Type: runbook.EventStepOutput, Step: "endless", Stream: "stdout", Text: "tail"})

	st, runID := testLog(t, evs)
	want := split(evs)

	x := newLogIndex()
	if err := x.extend(context.Background(), st, runID); err != nil {
		t.Fatal(err)
	}
	if x.total() < len(want) {
		t.Fatalf("index counts %d rows, one pass gives %d", x.total(), len(want))
	}
	var got []string
	for line := 0; line < x.total(); {
		pg := x.page(line)
		if pg.firstLine != line {
			t.Fatalf("page for line %d starts at %d", line, pg.firstLine)
		}
		var rows []string
		err := readRows(context.Background(), st, runID, pg, x.seq, func(r logRow) {
			rows = append(rows, rowString(r))
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != pg.rows {
			t.Fatalf("page at line %d: %d rows, index says %d", line, len(rows), pg.rows)
		}
		got = append(got, rows...)
		line += pg.rows
	}
	// The endless line was cut where its pages end: rejoin it to compare.
	joined := strings.Join(got, "\n")
	joined = strings.ReplaceAll(strings.ReplaceAll(joined, "x\n│x", "xx"), "x\n│tail", "xtail")
	if exp := strings.Join(want, "\n"); joined != exp {
		g, w := strings.Split(joined, "\n"), want
		for i := range min(len(g), len(w)) {
			if g[i] != w[i] {
				t.Fatalf("paged rows differ from one pass at row %d (of %d, %d): %.80q (%d), want %.80q (%d)", i, len(g), len(w), g[i], len(g[i]), w[i], len(w[i]))
			}
		}
		t.Fatalf("paged rows differ from one pass: %d rows vs %d", len(g), len(w))
	}
	if n := len(x.sections); n != 3 || x.sections[1].Step != "mixed" || x.sections[1].Status != "failed" || x.sections[0].Line != 0 {
		t.Errorf("sections %+v", x.sections)
	}
	if x.sections[1].Line != 50002 {
		t.Errorf("the mixed step starts at row %d, want 50002", x.sections[1].Line)
	}
}

// BenchmarkLogRows measures the server's half of opening a run of a
// million lines (64 KiB output events, as the engine records them):
// building the log's index, and reading the first and the last page.
func BenchmarkLogRows(b *testing.B) {
	var text strings.Builder
	for i := 1; i <= 1000000; i++ {
		fmt.Fprintf(&text, "many line %d\n", i)
	}
	var evs []runbook.Event
	at := time.Now()
	for rest := text.String(); rest != ""; {
		n := min(len(rest), 64<<10)
		evs = append(evs, runbook.Event{Type: runbook.EventStepOutput, Step: "many", Stream: "stdout", Text: rest[:n], Time: at})
		rest = rest[n:]
	}
	st, runID := testLog(b, evs)
	ctx := context.Background()
	b.Run("index", func(b *testing.B) {
		for range b.N {
			x := newLogIndex()
			if err := x.extend(ctx, st, runID); err != nil {
				b.Fatal(err)
			}
		}
	})
	x := newLogIndex()
	if err := x.extend(ctx, st, runID); err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		line int
	}{{"first page", 0}, {"last page", -1}, {"middle page", 500000}} {
		b.Run(c.name, func(b *testing.B) {
			for range b.N {
				n := 0
				if err := readRows(ctx, st, runID, x.page(c.line), x.seq, func(logRow) { n++ }); err != nil || n == 0 {
					b.Fatal(n, err)
				}
			}
		})
	}
}
