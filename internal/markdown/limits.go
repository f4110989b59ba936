package markdown

import (
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/opsbook/opsbook/internal/runbook"
)

// Input limits. A document past one is refused with an input-limit
// diagnostic where the limit is exceeded, and its body is not parsed, so
// that reading any file is bounded in time and memory (a runbook is a few
// kilobytes; these are far above any real one). docs/runbook-format.md
// lists them.
const (
	// MaxFileSize is the largest document read, in bytes.
	MaxFileSize = 1 << 20
	// MaxLines is the most lines a document may have.
	MaxLines = 50_000
	// MaxNesting is how deeply a line may be nested: each > quote and
	// list marker at its start counts one, and every two columns of
	// indentation before its text one more.
	MaxNesting = 100
	// MaxInfoString is the longest info string of a fence (the text after
	// ``` on its opening line: language and attributes), in bytes.
	MaxInfoString = 4096
	// maxLangName bounds the language word kept from an over-long info string.
	maxLangName = 64
)

// RuleInputLimit is the rule of the diagnostics about input limits.
const RuleInputLimit = "input-limit"

// ReadFile reads a document from a regular file, at most MaxFileSize+1
// bytes of it (Parse reports a longer one). A directory, a device such as
// /dev/zero, a FIFO or a socket is refused without being opened for
// reading, so it can neither block nor fill memory.
func ReadFile(path string) ([]byte, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if err := regular(path, info); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// The file may have been replaced since Stat: check what was opened.
	if info, err = f.Stat(); err != nil {
		return nil, err
	}
	if err := regular(path, info); err != nil {
		return nil, err
	}
	return io.ReadAll(io.LimitReader(f, MaxFileSize+1))
}

func regular(path string, info fs.FileInfo) error {
	if info.Mode().IsRegular() {
		return nil
	}
	what := "not a regular file"
	switch m := info.Mode(); {
	case m.IsDir():
		what = "a directory"
	case m&fs.ModeNamedPipe != 0:
		what = "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		what = "a socket"
	case m&fs.ModeDevice != 0:
		what = "a device"
	}
	return fmt.Errorf("%s is %s, not a document; only regular files are read", path, what)
}

// tooLarge reports a document over MaxFileSize.
func (p *parser) tooLarge() {
	p.errorf(runbook.Pos{Line: 1, Col: 1}, RuleInputLimit,
		"the document is larger than %d bytes (1 MiB), the most opsbook reads; split it into runbooks that call each other",
		MaxFileSize)
}

// checkNesting finds the first line of the body nested deeper than
// MaxNesting (see there) and reports it; the body is then not parsed,
// since the Markdown parser's time grows faster than the depth.
func (p *parser) checkNesting(body []byte, firstLine int) bool {
	if n := len(p.src.lineStarts); n > MaxLines {
		p.errorf(runbook.Pos{Line: MaxLines + 1, Col: 1}, RuleInputLimit,
			"the document has %d lines; the limit is %d — split it into runbooks that call each other", n, MaxLines)
		return false
	}
	for n := firstLine; n <= len(p.src.lineStarts); n++ {
		line := body[p.src.lineStarts[n-1]:]
		if n < len(p.src.lineStarts) {
			line = body[p.src.lineStarts[n-1] : p.src.lineStarts[n]-1]
		}
		if depth, col := lineDepth(line); depth > MaxNesting {
			p.errorf(runbook.Pos{Line: n, Col: col}, RuleInputLimit,
				"this line is nested %d levels deep (quotes, list items, indentation); the limit is %d — flatten the structure",
				depth, MaxNesting)
			return false
		}
	}
	return true
}

// lineDepth is how deeply a line is nested, and the byte column where its
// text starts. Indentation counts only when text follows it.
func lineDepth(line []byte) (depth, col int) {
	markers, cols := 0, 0
	i := 0
scan:
	for i < len(line) {
		switch c := line[i]; {
		case c == ' ':
			cols++
		case c == '\t':
			cols += 4 - cols%4
		case c == '>':
			markers++
		case (c == '-' || c == '*' || c == '+') && (i+1 == len(line) || line[i+1] == ' ' || line[i+1] == '\t'):
			markers++
		case c >= '0' && c <= '9':
			j := i
			for j < len(line) && j-i < 9 && line[j] >= '0' && line[j] <= '9' {
				j++
			}
			if j < len(line) && (line[j] == '.' || line[j] == ')') && (j+1 == len(line) || line[j+1] == ' ' || line[j+1] == '\t') {
				markers++
				i = j
				break
			}
			break scan
		default:
			break scan
		}
		i++
	}
	if i < len(line) {
		return markers + cols/2, i + 1
	}
	return markers, i + 1
}
