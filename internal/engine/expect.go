package engine

import (
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/opsbook/opsbook/internal/runbook"
)

// regexWindow is how much earlier output a regex match may reach back
// into across writes; a longer match is not found.
const regexWindow = 64 << 10

// matcher checks an expect block against a command's combined output as
// it streams, in bounded memory: a literal keeps the last len-1 bytes to
// find a match split across writes; a regex is tried on each write plus
// up to regexWindow bytes before it.
type matcher struct {
	mu      sync.Mutex
	literal string
	re      *regexp.Regexp
	tail    []byte
	matched bool
	seen    int64
}

func newMatcher(b *runbook.Block) (*matcher, error) {
	want := strings.TrimRight(b.Body, "\r\n")
	if want == "" {
		return nil, fmt.Errorf("the expect block is empty; write the text the output must contain")
	}
	if b.Regex {
		re, err := regexp.Compile("(?m)" + want)
		if err != nil {
			return nil, fmt.Errorf("expect=regex: %v; fix the regular expression (Go RE2 syntax)", err)
		}
		return &matcher{re: re}, nil
	}
	return &matcher{literal: want}, nil
}

func (m *matcher) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seen += int64(len(p))
	if m.matched {
		return len(p), nil
	}
	window := append(m.tail, p...)
	if m.re != nil {
		m.matched = m.re.Match(window)
		keep := min(len(window), regexWindow)
		m.tail = append(m.tail[:0:0], window[len(window)-keep:]...)
		return len(p), nil
	}
	m.matched = strings.Contains(string(window), m.literal)
	keep := min(len(window), len(m.literal)-1)
	m.tail = append(m.tail[:0:0], window[len(window)-keep:]...)
	return len(p), nil
}

// result says whether the output matched, in words for the log.
func (m *matcher) result() (bool, string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.re != nil {
		re := "/" + strings.TrimPrefix(m.re.String(), "(?m)") + "/"
		if m.matched {
			return true, "output matches " + re
		}
		return false, fmt.Sprintf("output (%d bytes) does not match %s", m.seen, re)
	}
	if m.matched {
		return true, fmt.Sprintf("output contains %q", m.literal)
	}
	return false, fmt.Sprintf("output (%d bytes) does not contain %q", m.seen, m.literal)
}
