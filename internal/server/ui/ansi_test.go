package ui

import (
	"fmt"
	"testing"
)

// Output may colour itself and nothing else: SGR sequences become
// classes from a fixed set, every other escape sequence and control
// character is dropped, and text stays text.
func TestParseANSI(t *testing.T) {
	cases := []struct {
		name, in, plain, segs string
	}{
		{"plain", "OK", "OK", "[]"},
		{"green then reset", "\x1b[32mOK\x1b[0m done", "OK done", `[["OK" "f2"] [" done" ""]]`},
		{"bold bright red on blue", "\x1b[1;91;44mFAIL", "FAIL", `[["FAIL" "f9 b4 bo"]]`},
		{"256 colours map to the 16, true colour is skipped", "\x1b[38;5;3ma\x1b[38;2;1;2;3mb", "ab", `[["a" "f3"] ["b" "f3"]]`},
		{"fault: cursor movement and screen erase", "\x1b[2J\x1b[10;20Hhere\x1b[K", "here", "[]"},
		{"fault: OSC title and hyperlink", "\x1b]0;pwned\x07\x1b]8;;javascript:alert(1)\x1b\\link\x1b]8;;\x1b\\", "link", "[]"},
		{"fault: bell, backspace, NUL, DEL", "a\x07b\x08c\x00d\x7fe", "abcde", "[]"},
		{"fault: markup is text", "\x1b[31m<img src=x onerror=alert(1)>", "<img src=x onerror=alert(1)>", `[["<img src=x onerror=alert(1)>" "f1"]]`},
		{"carriage return keeps the last frame", "10%\r50%\r100%\r", "100%", "[]"},
		{"broken sequence at the end", "ok\x1b[3", "ok", "[]"},
		{"tab kept", "a\tb", "a\tb", "[]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			plain, segs := parseANSI(c.in)
			if plain != c.plain {
				t.Errorf("plain %q, want %q", plain, c.plain)
			}
			got := "[]"
			if segs != nil {
				got = fmt.Sprint(segsString(segs))
			}
			if got != c.segs {
				t.Errorf("segments %s, want %s", got, c.segs)
			}
		})
	}
}

func segsString(segs []logSegment) string {
	s := "["
	for i, g := range segs {
		if i > 0 {
			s += " "
		}
		s += fmt.Sprintf("[%q %q]", g[0], g[1])
	}
	return s + "]"
}
