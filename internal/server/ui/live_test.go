package ui

import (
	"bytes"
	"html"
	"regexp"
	"strings"
	"testing"

	"github.com/opsbook/opsbook/internal/runbook"
)

var tags = regexp.MustCompile(`<[^>]*>`)

// shown is the log as the reader sees it: the HTML without tags, or the
// plain text.
func shown(t *testing.T, plain bool, evs []runbook.Event) string {
	t.Helper()
	c := logCursor{plain: plain}
	var b bytes.Buffer
	lines := 0
	for _, ev := range evs {
		lines += c.render(&b, ev)
	}
	out := b.String()
	if !plain {
		out = html.UnescapeString(tags.ReplaceAllString(out, ""))
	}
	if n := strings.Count(out, "\n"); n != lines {
		t.Errorf("render counted %d lines, wrote %d", lines, n)
	}
	return out
}

func output(host, stream, text string) runbook.Event {
	return runbook.Event{Type: runbook.EventStepOutput, Step: "dump", Host: host, Stream: stream, Text: text}
}

// TestLogChunkBoundaries: however output is cut into events, every line
// is shown once with its host prefix (the run page once lost the prefix of
// the line after a chunk that did not end in a newline).
func TestLogChunkBoundaries(t *testing.T) {
	const text = "first line\nsecond <line>\nthird line\n"
	const want = "db1│first line\ndb1│second <line>\ndb1│third line\n"
	for _, plain := range []bool{false, true} {
		for cut1 := 0; cut1 <= len(text); cut1++ {
			for cut2 := cut1; cut2 <= len(text); cut2 += 3 {
				evs := []runbook.Event{output("db1", "stdout", text[:cut1]), output("db1", "stdout", text[cut1:cut2]), output("db1", "stdout", text[cut2:])}
				if got := shown(t, plain, evs); got != want {
					t.Fatalf("plain=%v cut at %d,%d:\n%q\nwant\n%q", plain, cut1, cut2, got, want)
				}
			}
		}
	}
}

func TestLogInterleaving(t *testing.T) {
	cases := []struct {
		name string
		evs  []runbook.Event
		html string // shown in the page
		text string // the downloaded log
	}{
		{name: "unfinished line ended by another host",
			evs:  []runbook.Event{output("db1", "stdout", "copying"), output("db2", "stdout", "done\n"), output("db1", "stdout", " 40%\n")},
			html: "db1│copying\ndb2│done\ndb1│ 40%\n", text: "db1│copying\ndb2│done\ndb1│ 40%\n"},
		{name: "stderr between stdout parts",
			evs:  []runbook.Event{output("", "stdout", "a"), output("", "stderr", "warn\n"), output("", "stdout", "b\n")},
			html: "a\nwarn\nb\n", text: "a\nwarn\nb\n"},
		{name: "marker after an unfinished line",
			evs: []runbook.Event{output("web1", "stdout", "no newline at the end"),
				{Type: runbook.EventStepFinished, Step: "dump", Host: "web1", Data: map[string]string{"status": "succeeded"}}},
			html: "web1│no newline at the end\n■ dump @ web1 succeeded\n", text: "web1│no newline at the end"},
		{name: "empty output event changes nothing",
			evs:  []runbook.Event{output("web1", "stdout", "par"), output("web1", "stdout", ""), output("web1", "stdout", "tial\n")},
			html: "web1│partial\n", text: "web1│partial\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := shown(t, false, c.evs); got != c.html {
				t.Errorf("page:\n%q\nwant\n%q", got, c.html)
			}
			if got := shown(t, true, c.evs); got != c.text {
				t.Errorf("download:\n%q\nwant\n%q", got, c.text)
			}
		})
	}
}
