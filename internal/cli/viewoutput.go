package cli

import (
	"encoding/binary"
	"encoding/json"
	"math/bits"
	"slices"
	"strings"

	"github.com/opsbook/opsbook/internal/runbook"
)

// This file is the hot path of the run views: a step printing fast (`yes`,
// a dump, a log) hands them a 64 KiB chunk at a time. The view's printer
// goroutine (runView.printer) formats and writes them while the recorder
// records the next, on a machine whose cores the step itself keeps busy:
// each byte it spends is CPU the run's own output does not get.

const (
	ones  uint64 = 0x0101010101010101
	highs uint64 = 0x8080808080808080
	lows         = ^highs
)

// newlines returns the high bit of every byte of w that is '\n', and of
// no other (exact, unlike the "has a zero byte" test, which may flag a byte
// above a match).
func newlines(w uint64) uint64 {
	t := w ^ (ones * '\n')
	return ^((t&lows + lows) | t | lows)
}

// unprintable returns the high bit of w's bytes where w is not plain
// text (plainText), and maybe of some bytes above such a byte: exact as a
// whole, not per byte (bit tricks after "Bit Twiddling Hacks": hasless,
// hasmore). Newline bytes count as plain: they become '*' (0x0a|0x20).
func unprintable(w uint64) uint64 {
	p := w | newlines(w)>>7*0x20
	below := (p - ones*0x20) &^ p     // a byte < 0x20
	above := p + ones*(0x7f-0x7e) | p // a byte > 0x7e
	return (below | above) & highs
}

// word is the little-endian word of s's eight bytes from i.
func word[T string | []byte](s T, i int) uint64 {
	return uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
		uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
}

// appendLines appends complete lines (text ends with a newline) under
// their label. A chunk of plain printable ASCII lines, the common case, is
// checked once and copied into a buffer sized for it; short lines (`yes`
// gives 32,768 per chunk) eight bytes at a time, with the label stored as
// one or two words after each newline (appendShortLines).
func appendLines(out []byte, label, text string, color bool) []byte {
	prefix := "[" + label + "] "
	lines := strings.Count(text, "\n")
	size := len(text) + lines*len(prefix)
	if len(text) < 32*lines && len(prefix) <= 16 {
		if o, ok := appendShortLines(out, prefix, text, size); ok {
			return o
		}
	} else if plainText(text) {
		o := len(out)
		out = slices.Grow(out, size)[:o+size]
		for text != "" {
			i := strings.IndexByte(text, '\n')
			o += copy(out[o:], prefix)
			o += copy(out[o:], text[:i+1])
			text = text[i+1:]
		}
		return out
	}
	for text != "" {
		line, rest, _ := strings.Cut(text, "\n")
		out = appendLine(out, label, line, color)
		text = rest
	}
	return out
}

// appendShortLines is appendLines for short lines and a prefix of at most
// 16 bytes; size is what it appends. It checks that the text is plain
// (plainText) as it copies, and reports false, having appended nothing,
// when it is not. It writes whole words, which reach
// past what it keeps (the prefix after the last newline, dropped at the
// end, and 16 bytes beyond it), so the buffer has 32 bytes of room beyond
// size; the next store overwrites the excess.
func appendShortLines(out []byte, prefix, text string, size int) ([]byte, bool) {
	var p [16]byte
	copy(p[:], prefix)
	p0, p1 := binary.LittleEndian.Uint64(p[:8]), binary.LittleEndian.Uint64(p[8:])
	lp := len(prefix)
	start := len(out)
	out = slices.Grow(out, size+32)[:start+size+32]
	o := start
	var bad uint64 // unprintable bytes seen
	binary.LittleEndian.PutUint64(out[o:], p0)
	binary.LittleEndian.PutUint64(out[o+8:], p1)
	o += lp
	i := 0
	for ; i+8 <= len(text); i += 8 {
		w := word(text, i)
		m := newlines(w)
		bad |= unprintable(w)
		pos := 0 // bytes of w already written
		for m != 0 {
			k := bits.TrailingZeros64(m)>>3 + 1 // w's bytes up to and including this newline
			d := out[o : o+8]
			binary.LittleEndian.PutUint64(d, w>>(8*pos))
			o += k - pos
			d = out[o : o+16]
			binary.LittleEndian.PutUint64(d, p0)
			binary.LittleEndian.PutUint64(d[8:], p1)
			o += lp
			pos = k
			m &= m - 1
		}
		if pos < 8 {
			binary.LittleEndian.PutUint64(out[o:], w>>(8*pos))
			o += 8 - pos
		}
	}
	if bad != 0 || !plainText(text[i:]) {
		return out[:start], false
	}
	for ; i < len(text); i++ {
		out[o] = text[i]
		o++
		if text[i] == '\n' {
			binary.LittleEndian.PutUint64(out[o:], p0)
			binary.LittleEndian.PutUint64(out[o+8:], p1)
			o += lp
		}
	}
	// text ends with a newline: the prefix written after it starts no line.
	return out[:o-lp], true
}

// plainText reports whether s holds only printable ASCII and newlines:
// what the views may copy without sanitizeOutput. It looks at eight bytes
// at a time.
func plainText[T string | []byte](s T) bool {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		if unprintable(word(s, i)) != 0 {
			return false
		}
	}
	for ; i < len(s); i++ {
		if c := s[i]; (c < 0x20 || c >= 0x7f) && c != '\n' {
			return false
		}
	}
	return true
}

// jsonEscape is what encoding/json writes for each ASCII byte of a string
// (HTML-safe, as json.Encoder does by default): 0 for the byte itself,
// else the letter after the backslash ('u' for \u00XX).
var jsonEscape = func() (t [128]byte) {
	for c := range 0x20 {
		t[c] = 'u'
	}
	t['\b'], t['\f'], t['\n'], t['\r'], t['\t'] = 'b', 'f', 'n', 'r', 't'
	t['"'], t['\\'] = '"', '\\'
	t['<'], t['>'], t['&'] = 'u', 'u', 'u'
	return t
}()

// jsonOutputEvent appends the JSON line json.Encoder writes for a
// step.output event, byte for byte, without going through reflection and
// encoding/json's escaping loop, which cost more than recording the chunk.
// It reports false, having appended nothing, for a text that is not all
// ASCII (the encoder's rules for the rest live in encoding/json).
func jsonOutputEvent(out []byte, ev runbook.Event) ([]byte, bool) {
	escaped := len(ev.Text)
	for i := 0; i < len(ev.Text); i++ {
		c := ev.Text[i]
		if c >= 0x80 {
			return out, false
		}
		switch jsonEscape[c] {
		case 0:
		case 'u':
			escaped += 5
		default:
			escaped++
		}
	}
	text := ev.Text
	ev.Text = ""
	data := ev.Data
	ev.Data = nil
	head, err := json.Marshal(ev) // every field before text; Data comes after it
	if err != nil {
		return out, false
	}
	start := len(out)
	out = append(out, head[:len(head)-1]...)
	if text != "" {
		out = append(out, `,"text":"`...)
		o := len(out)
		out = slices.Grow(out, escaped+1)[:o+escaped]
		for i := 0; i < len(text); i++ {
			c := text[i]
			switch e := jsonEscape[c]; e {
			case 0:
				out[o] = c
				o++
			case 'u':
				const hex = "0123456789abcdef"
				out[o], out[o+1], out[o+2], out[o+3], out[o+4], out[o+5] = '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf]
				o += 6
			default:
				out[o], out[o+1] = '\\', e
				o += 2
			}
		}
		out = append(out, '"')
	}
	if len(data) > 0 {
		d, err := json.Marshal(data)
		if err != nil {
			return out[:start], false
		}
		out = append(out, `,"data":`...)
		out = append(out, d...)
	}
	return append(out, '}', '\n'), true
}
