package cli

import (
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/opsbook/opsbook/internal/engine"
	"github.com/opsbook/opsbook/internal/runbook"
)

// plainByByte is plainText's definition, one byte at a time.
func plainByByte(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 || c >= 0x7f) && c != '\n' {
			return false
		}
	}
	return true
}

// Fault: a control byte (an escape sequence's ESC, a carriage return, a
// NUL) or a non-ASCII byte hidden among printable ones, at any position of
// the eight bytes plainText looks at together, would be copied to the
// terminal unsanitised if the word test missed it. Every byte value is
// tried at every position of a 16-byte line of printable text and newlines.
func TestPlainTextFindsEveryUnsafeByte(t *testing.T) {
	bases := []string{"yyyyyyyyyyyyyyyy", "y\ny\ny\ny\ny\ny\ny\ny\n", " ~ ~ ~ ~ ~ ~ ~ ~", "\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n"}
	for _, base := range bases {
		for pos := range len(base) {
			for c := range 256 {
				b := []byte(base)
				b[pos] = byte(c)
				s := string(b)
				if got, want := plainText(s), plainByByte(s); got != want {
					t.Fatalf("plainText(%q) = %v, want %v", s, got, want)
				}
				if got, want := plainText(s[1:]), plainByByte(s[1:]); got != want {
					t.Fatalf("plainText(%q) = %v, want %v", s[1:], got, want)
				}
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		b := make([]byte, r.IntN(40))
		for i := range b {
			b[i] = byte(0x1e + r.IntN(0x63)) // mostly printable, some 0x1e-0x1f and 0x7f-0x80
		}
		if got, want := plainText(string(b)), plainByByte(string(b)); got != want {
			t.Fatalf("plainText(%q) = %v, want %v", b, got, want)
		}
	}
}

// The fast path for chunks of plain lines writes what the line-by-line
// path writes; an unsafe byte anywhere in the chunk sends it through
// sanitizeOutput.
func TestRunViewPlainAndUnsafeChunks(t *testing.T) {
	for _, tc := range []struct{ name, text, want string }{
		{"plain", "a\nbb\n\nccc\n", "[s] a\n[s] bb\n[s] \n[s] ccc\n"},
		{"escape in the last line", "a\nbb\nc\x1b[2Jc\n", "[s] a\n[s] bb\n[s] cc\n"},
		{"carriage return", "progress 1\rprogress 2\ndone\n", "[s] progress 2\n[s] done\n"},
		{"unfinished line kept", "a\nb", "[s] a\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			v := newRunView(&out, "text", &engine.Plan{Document: &runbook.Document{}})
			v.event(runbook.Event{Type: runbook.EventStepOutput, Step: "s", Stream: "stdout", Text: tc.text})
			v.waitPrinted()
			if out.String() != tc.want {
				t.Errorf("got %q, want %q", out.String(), tc.want)
			}
		})
	}
}

// BenchmarkRunViewOutput is the text and JSON views of 64 KiB chunks of `yes`, of
// 1,000-byte lines and of text without newlines.
func BenchmarkRunViewOutput(b *testing.B) {
	for _, tc := range []struct{ name, text string }{
		{"short-lines", strings.Repeat("y\n", 32<<10)},
		{"long-lines", strings.Repeat(strings.Repeat("0", 999)+"\n", 65)},
		{"no-newlines", strings.Repeat("x", 64<<10)},
	} {
		for _, view := range []string{"text", "json"} {
			b.Run(tc.name+"/"+view, func(b *testing.B) {
				v := newRunView(io.Discard, view, &engine.Plan{Document: &runbook.Document{}})
				ev := runbook.Event{RunID: "r-01M8XBPW0WYFT88P32JJW0EMX2", Seq: 3, Time: time.Now(), Type: runbook.EventStepOutput,
					Step: "s0", Stream: "stdout", Attempt: 1, Text: tc.text}
				b.SetBytes(int64(len(tc.text)))
				for b.Loop() {
					v.event(ev)
					v.waitPrinted()
				}
			})
		}
	}
}

// Fault: sanitizeOutput returns a printable ASCII line as it is; an ESC,
// a carriage return or a tab anywhere in it must still take the slow path.
func TestSanitizeOutputPlainFastPath(t *testing.T) {
	line := "0123456789abcdefg"
	if got := sanitizeOutput(line, false); got != line {
		t.Errorf("plain line became %q", got)
	}
	for i := range len(line) {
		for _, c := range []byte{0x1b, '\r', '\t', 0x7f, '\n'} {
			s := line[:i] + string(c) + line[i:]
			if got := sanitizeOutput(s, false); strings.IndexByte(got, c) >= 0 {
				t.Errorf("sanitizeOutput(%q) = %q kept byte %#x", s, got, c)
			}
		}
	}
}
