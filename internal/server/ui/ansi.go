package ui

import (
	"strconv"
	"strings"
)

// logSegment is a run of a log line's text with the CSS classes of the
// SGR attributes (colour, bold, …) in force. The browser sets the text as
// text (never as HTML) and the classes from a fixed set, so output can
// colour itself but can do nothing else.
type logSegment [2]string // text, classes

// parseANSI splits one line of output into plain text and coloured
// segments. SGR sequences (ESC [ … m) become classes; every other escape
// sequence (cursor movement, erasing, OSC titles and hyperlinks, …) and
// every other control character except the tab is dropped. A carriage
// return keeps what follows it, as a terminal overwrites the line (the
// last frame of a progress bar). segs is nil when the line carries no
// colour; plain is the text without any escape sequences either way.
func parseANSI(line string) (plain string, segs []logSegment) {
	if !needsANSI(line) {
		return line, nil
	}
	if i := strings.LastIndexByte(strings.TrimRight(line, "\r"), '\r'); i >= 0 {
		line = line[i+1:]
	}
	var attrs sgr
	var text, all strings.Builder
	coloured := false
	flush := func() {
		if text.Len() == 0 {
			return
		}
		cls := attrs.classes()
		if cls != "" {
			coloured = true
		}
		segs = append(segs, logSegment{text.String(), cls})
		all.WriteString(text.String())
		text.Reset()
	}
	for i := 0; i < len(line); {
		c := line[i]
		switch {
		case c == 0x1b:
			n, params, final := escape(line[i:])
			if final == 'm' {
				flush()
				attrs.apply(params)
			}
			i += n
		case c == '\t' || c >= 0x20 && c != 0x7f:
			text.WriteByte(c)
			i++
		default: // another control character: dropped
			i++
		}
	}
	flush()
	if !coloured {
		return all.String(), nil
	}
	return all.String(), segs
}

func needsANSI(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return true
		}
	}
	return false
}

// escape measures the escape sequence at the start of s (s[0] is ESC):
// its length, and for a CSI sequence its parameters and final byte.
func escape(s string) (n int, params string, final byte) {
	if len(s) < 2 {
		return len(s), "", 0
	}
	switch s[1] {
	case '[': // CSI: parameters 0x30–0x3f, intermediates 0x20–0x2f, final 0x40–0x7e
		for i := 2; i < len(s); i++ {
			if c := s[i]; c >= 0x40 && c <= 0x7e {
				return i + 1, s[2:i], c
			} else if c < 0x20 || c > 0x7e {
				return i, "", 0 // broken sequence: drop what was read
			}
		}
		return len(s), "", 0
	case ']', 'P', '_', '^', 'X': // OSC and other strings: up to BEL or ESC \
		for i := 2; i < len(s); i++ {
			if s[i] == 0x07 {
				return i + 1, "", 0
			}
			if s[i] == 0x1b && i+1 < len(s) && s[i+1] == '\\' {
				return i + 2, "", 0
			}
		}
		return len(s), "", 0
	}
	return 2, "", 0
}

// sgr is the graphic state: foreground and background colour (0 none,
// else 1+index of 16 colours) and the text attributes.
type sgr struct {
	fg, bg                     int
	bold, dim, italic, underln bool
}

func (a *sgr) apply(params string) {
	if params == "" {
		*a = sgr{}
		return
	}
	codes := strings.FieldsFunc(params, func(r rune) bool { return r == ';' || r == ':' })
	for i := 0; i < len(codes); i++ {
		n, err := strconv.Atoi(codes[i])
		if err != nil {
			continue
		}
		switch {
		case n == 0:
			*a = sgr{}
		case n == 1:
			a.bold = true
		case n == 2:
			a.dim = true
		case n == 3:
			a.italic = true
		case n == 4:
			a.underln = true
		case n == 22:
			a.bold, a.dim = false, false
		case n == 23:
			a.italic = false
		case n == 24:
			a.underln = false
		case n >= 30 && n <= 37:
			a.fg = n - 30 + 1
		case n >= 90 && n <= 97:
			a.fg = n - 90 + 9
		case n == 39:
			a.fg = 0
		case n >= 40 && n <= 47:
			a.bg = n - 40 + 1
		case n >= 100 && n <= 107:
			a.bg = n - 100 + 9
		case n == 49:
			a.bg = 0
		case n == 38 || n == 48: // 256 colours (5;n) map to the 16; true colour (2;r;g;b) is skipped
			if i+2 < len(codes) && codes[i+1] == "5" {
				if c, err := strconv.Atoi(codes[i+2]); err == nil && c >= 0 && c < 16 {
					if n == 38 {
						a.fg = c + 1
					} else {
						a.bg = c + 1
					}
				}
				i += 2
			} else if i+1 < len(codes) && codes[i+1] == "2" {
				i += 4
			}
		}
	}
}

func (a sgr) classes() string {
	var c []string
	if a.fg > 0 {
		c = append(c, "f"+strconv.Itoa(a.fg-1))
	}
	if a.bg > 0 {
		c = append(c, "b"+strconv.Itoa(a.bg-1))
	}
	if a.bold {
		c = append(c, "bo")
	}
	if a.dim {
		c = append(c, "di")
	}
	if a.italic {
		c = append(c, "it")
	}
	if a.underln {
		c = append(c, "un")
	}
	return strings.Join(c, " ")
}
