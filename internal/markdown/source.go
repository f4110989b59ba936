package markdown

import (
	"bytes"
	"sort"
	"unicode/utf8"

	"github.com/opsbook/opsbook/internal/runbook"
)

// source is a document's text after the byte-order mark is dropped and
// line endings are made "\n", with an index of where each line starts.
// Dropping "\r" before "\n" keeps every line number and column of the
// original file, so positions computed here are positions in the file.
type source struct {
	text       []byte
	lineStarts []int
}

var bom = []byte("\xef\xbb\xbf")

func newSource(src []byte) *source {
	text := bytes.TrimPrefix(src, bom)
	if bytes.IndexByte(text, '\r') >= 0 {
		out := make([]byte, 0, len(text))
		for i := 0; i < len(text); i++ {
			c := text[i]
			if c == '\r' {
				if i+1 < len(text) && text[i+1] == '\n' {
					continue
				}
				c = '\n' // a lone CR ends a line, as in CommonMark
			}
			out = append(out, c)
		}
		text = out
	} else {
		text = bytes.Clone(text)
	}
	s := &source{text: text, lineStarts: []int{0}}
	for i, c := range text {
		if c == '\n' {
			s.lineStarts = append(s.lineStarts, i+1)
		}
	}
	return s
}

// pos turns a byte offset into a 1-based line and byte column.
func (s *source) pos(off int) runbook.Pos {
	if off < 0 {
		off = 0
	}
	if off > len(s.text) {
		off = len(s.text)
	}
	line := sort.Search(len(s.lineStarts), func(i int) bool { return s.lineStarts[i] > off }) - 1
	return runbook.Pos{Line: line + 1, Col: off - s.lineStarts[line] + 1}
}

// offset is the inverse of pos for a line and a byte column.
func (s *source) offset(line, col int) int {
	if line < 1 {
		return 0
	}
	if line > len(s.lineStarts) {
		return len(s.text)
	}
	off := s.lineStarts[line-1] + col - 1
	return min(max(off, 0), len(s.text))
}

// line returns the text of a 1-based line without its newline.
func (s *source) line(n int) []byte {
	if n < 1 || n > len(s.lineStarts) {
		return nil
	}
	start := s.lineStarts[n-1]
	end := len(s.text)
	if n < len(s.lineStarts) {
		end = s.lineStarts[n] - 1
	}
	return s.text[start:end]
}

// byteCol converts a 1-based column counted in characters (as the YAML
// parser reports it) into a 1-based column counted in bytes.
func (s *source) byteCol(line, runeCol int) int {
	text := s.line(line)
	off := 0
	for i := 1; i < runeCol && off < len(text); i++ {
		_, size := utf8.DecodeRune(text[off:])
		off += size
	}
	return off + 1 + max(runeCol-1-utf8.RuneCount(text), 0)
}
