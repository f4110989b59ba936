// Package mask hides secret values in text, also when a value arrives split
// across several writes of a stream.
//
// Every byte that belongs to an occurrence of a secret is hidden; each run of
// overlapping occurrences becomes one Replacement. So with secrets "abc" and
// "bcdef", "abcdef!" becomes "***!": neither secret leaks a single byte, and
// of secrets that are prefixes of each other the longest match wins.
package mask

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// Replacement stands in for every masked secret.
const Replacement = "***"

// minLineLen is the shortest line of a multi-line secret that is masked on
// its own: shorter lines ("}", "--") are common in any output and hiding them
// everywhere would wreck the log without protecting anything.
const minLineLen = 4

// chunkSize bounds the work buffer of a Writer whatever the size of a Write.
const chunkSize = 64 << 10

// Masker knows the secrets to hide. It is safe for concurrent use; secrets
// added later apply to every Writer from then on. A nil *Masker masks
// nothing.
type Masker struct {
	mu  sync.Mutex // serialises Add; readers use set without locking
	set atomic.Pointer[patterns]
}

// patterns is an immutable set of byte strings to hide; Add replaces it.
type patterns struct {
	list   [][]byte
	rare   []int // per pattern: offset of its least common byte, searched first
	maxLen int
	first  [256]bool // first bytes of the patterns
}

// New returns a Masker for the given secrets; empty ones are ignored.
func New(secrets ...string) *Masker {
	m := &Masker{}
	m.Add(secrets...)
	return m
}

// Add registers more secrets (a secret step output, a variable resolved
// mid-run). Besides the raw value it hides the forms a value commonly takes
// in output: each line of a multi-line value, its JSON string escaping and
// its URL query escaping.
func (m *Masker) Add(secrets ...string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.set.Load()
	seen := make(map[string]bool)
	var list [][]byte
	if old != nil {
		for _, p := range old.list {
			seen[string(p)] = true
			list = append(list, p)
		}
	}
	add := func(s string) {
		if s != "" && !seen[s] {
			seen[s] = true
			list = append(list, []byte(s))
		}
	}
	for _, s := range secrets {
		for _, v := range variants(s) {
			add(v)
		}
	}
	if old != nil && len(list) == len(old.list) {
		return
	}
	// Longest first keeps the order deterministic; matching itself does not
	// depend on it.
	sort.SliceStable(list, func(i, j int) bool { return len(list[i]) > len(list[j]) })
	next := &patterns{list: list, rare: make([]int, len(list))}
	for i, p := range list {
		next.maxLen = max(next.maxLen, len(p))
		next.first[p[0]] = true
		for j := range p {
			if byteFrequency(p[j]) < byteFrequency(p[next.rare[i]]) {
				next.rare[i] = j
			}
		}
	}
	m.set.Store(next)
}

// byteFrequency ranks how common a byte is in command output, roughly:
// searching for a secret's rarest byte first gives few false candidates,
// which is what makes scanning fast.
func byteFrequency(c byte) int {
	switch {
	case c == ' ' || c == '\n':
		return 100
	case strings.IndexByte("etaoinsrhldcum", c) >= 0:
		return 90
	case 'a' <= c && c <= 'z':
		return 80
	case '0' <= c && c <= '9':
		return 70
	case strings.IndexByte("-_./:=,\"'\t", c) >= 0:
		return 60
	case 'A' <= c && c <= 'Z':
		return 50
	case c >= 0x80:
		return 40 // UTF-8 text in other languages
	}
	return 30 // other punctuation and control bytes
}

// index returns the first occurrence of pattern i in data starting at or
// after from and before limit, whole within data, or -1.
func (set *patterns) index(i int, data []byte, from, limit int) int {
	p, r := set.list[i], set.rare[i]
	lastStart := min(limit-1, len(data)-len(p))
	fails := 0
	for s := from; s <= lastStart; {
		k := bytes.IndexByte(data[s+r:lastStart+r+1], p[r])
		if k < 0 {
			return -1
		}
		s += k
		if bytes.Equal(data[s:s+len(p)], p) {
			return s
		}
		s++
		// Output full of the "rare" byte: let bytes.Index take over, it
		// switches to a search that stays linear.
		if fails++; fails > 16+(s-from)/16 {
			j := bytes.Index(data[s:lastStart+len(p)], p)
			if j < 0 {
				return -1
			}
			return s + j
		}
	}
	return -1
}

// variants are the strings that reveal secret s when printed.
func variants(s string) []string {
	if s == "" {
		return nil
	}
	out := []string{s}
	if strings.ContainsAny(s, "\r\n") {
		for _, line := range strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' }) {
			if line = strings.TrimSpace(line); len(line) >= minLineLen {
				out = append(out, line)
			}
		}
	}
	var quoted bytes.Buffer
	enc := json.NewEncoder(&quoted)
	enc.SetEscapeHTML(false)
	if enc.Encode(s) == nil {
		// Encode writes "…"\n; keep what is between the quotes.
		if q := quoted.Bytes(); len(q) >= 3 {
			out = append(out, string(q[1:len(q)-2]))
		}
	}
	out = append(out, url.QueryEscape(s))
	return out
}

func (m *Masker) patterns() *patterns {
	if m == nil {
		return nil
	}
	return m.set.Load()
}

// String returns s with every secret replaced.
func (m *Masker) String(s string) string {
	set := m.patterns()
	if set == nil || len(set.list) == 0 {
		return s
	}
	var sc scanner
	out, _ := sc.mask(make([]byte, 0, len(s)), []byte(s), set, true)
	return string(out)
}

// scanner is the matching state carried across the chunks of one stream.
type scanner struct {
	base   int64 // stream offset of the data passed to the next mask call
	runEnd int64 // stream offset where the last masked run ends
	next   []int // per pattern: where it next occurs in the data, or -1
}

// mask appends to out the masked form of the part of data that can be
// decided now and returns how many bytes of data that was; the caller keeps
// the rest and passes it again, followed by more input. With final, all of
// data is decided. Otherwise only a suffix that is a proper prefix of some
// secret is held back, so at most maxLen-1 bytes.
func (sc *scanner) mask(out, data []byte, set *patterns, final bool) ([]byte, int) {
	return sc.maskUpTo(out, data, set, final, len(data))
}

// maskUpTo is mask deciding at most the first upTo bytes of data: matches
// that start there may still run on into the rest, whose covered bytes the
// next call then drops. Streams uses it to decide a merged stream one
// source's run of bytes at a time.
func (sc *scanner) maskUpTo(out, data []byte, set *patterns, final bool, upTo int) ([]byte, int) {
	limit := len(data) // match starts below limit are decided
	if !final {
		limit = holdBack(data, set)
	}
	limit = min(limit, upTo)
	cursor := 0 // data before cursor has been emitted or dropped
	emitUpTo := func(x int) {
		from := cursor
		if covered := int(sc.runEnd - sc.base); covered > from {
			from = min(covered, x)
		}
		if from < x {
			out = append(out, data[from:x]...)
		}
		cursor = max(cursor, x)
	}
	if limit > 0 {
		if cap(sc.next) < len(set.list) {
			sc.next = make([]int, len(set.list))
		}
		next := sc.next[:len(set.list)]
		find := func(i, from int) int { return set.index(i, data, from, limit) }
		for i := range next {
			next[i] = find(i, 0)
		}
		for {
			s := -1
			for _, n := range next {
				if n >= 0 && (s < 0 || n < s) {
					s = n
				}
			}
			if s < 0 {
				break
			}
			for i, n := range next {
				if n != s {
					continue
				}
				e := sc.base + int64(s+len(set.list[i]))
				if sc.base+int64(s) < sc.runEnd {
					sc.runEnd = max(sc.runEnd, e) // overlaps the current run
				} else {
					emitUpTo(s)
					out = append(out, Replacement...)
					sc.runEnd = e
				}
				next[i] = find(i, s+1)
			}
		}
	}
	emitUpTo(limit)
	sc.base += int64(limit)
	return out, limit
}

// holdBack returns where the longest suffix of data that could still grow
// into a secret begins, or len(data) when there is none.
func holdBack(data []byte, set *patterns) int {
	for q := max(0, len(data)-set.maxLen+1); q < len(data); q++ {
		if !set.first[data[q]] {
			continue
		}
		tail := data[q:]
		for _, p := range set.list {
			if len(p) > len(tail) && bytes.HasPrefix(p, tail) {
				return q
			}
		}
	}
	return len(data)
}

// ErrClosed is returned by Write after Close.
var ErrClosed = errors.New("mask: write after close")

// Writer masks what is written to it before passing it on. It holds back
// only a tail that could be the start of a secret, at most the longest
// secret's length minus one byte, and never emits part of a secret. It is
// safe for concurrent use.
type Writer struct {
	m       *Masker
	w       io.Writer
	mu      sync.Mutex
	sc      scanner
	pending []byte // undecided input: a possible secret prefix
	out     []byte
	err     error // sticky: the first error of w, or ErrClosed
}

// Writer returns a Writer that masks into w. Closing it does not close w.
func (m *Masker) Writer(w io.Writer) *Writer {
	return &Writer{m: m, w: w}
}

// Write masks p and writes what can be decided to the underlying writer.
// It reports len(p) unless the underlying writer fails.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return 0, w.err
	}
	set := w.m.patterns()
	if (set == nil || len(set.list) == 0) && len(w.pending) == 0 {
		w.sc.base += int64(len(p))
		if _, err := w.w.Write(p); err != nil {
			w.err = err
			return 0, err
		}
		return len(p), nil
	}
	for rest := p; len(rest) > 0; {
		n := min(len(rest), chunkSize)
		w.pending = append(w.pending, rest[:n]...)
		rest = rest[n:]
		if err := w.process(set, false); err != nil {
			return len(p) - len(rest) - n, err
		}
	}
	return len(p), nil
}

// process masks pending and writes the decided part; the caller holds mu.
func (w *Writer) process(set *patterns, final bool) error {
	if set == nil || len(set.list) == 0 {
		set = &patterns{} // secrets are never removed: pending is a leftover
		final = true
	}
	var used int
	w.out, used = w.sc.mask(w.out[:0], w.pending, set, final)
	w.pending = append(w.pending[:0], w.pending[used:]...)
	if len(w.out) > 0 {
		if _, err := w.w.Write(w.out); err != nil {
			w.err = err
			return err
		}
	}
	if cap(w.out) > 2*chunkSize {
		w.out = nil // one huge burst of replacements should not pin memory
	}
	return nil
}

// Flush writes everything that cannot be the start of a secret (Write
// already does; this also picks up secrets added since) and flushes the
// underlying writer if it has a Flush method.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	if len(w.pending) > 0 {
		if err := w.process(w.m.patterns(), false); err != nil {
			return err
		}
	}
	if f, ok := w.w.(interface{ Flush() error }); ok {
		return f.Flush()
	}
	return nil
}

// Close writes the held-back tail, which at the end of the stream can no
// longer become a secret. Further writes fail with ErrClosed.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		if w.err == ErrClosed {
			return nil
		}
		return w.err
	}
	err := w.process(w.m.patterns(), true)
	w.err = ErrClosed
	w.pending = nil
	return err
}

// Streams masks the output streams of one command (stdout and stderr) as
// one merged stream, in the order their bytes arrive, so that a secret
// written half on one stream and half on the other is found; and then each
// stream on its own, so that a secret written on one stream in pieces
// between which the other stream wrote is found too. Each destination still
// gets only its own stream's bytes: a secret split across streams becomes
// one Replacement in the stream its first byte came from, and its bytes on
// the other stream are dropped. It is safe for concurrent use.
type Streams struct {
	m       *Masker
	outs    []*Writer // each stream masked alone, after the merged pass
	mu      sync.Mutex
	sc      scanner
	pending []byte
	segs    []segment // the source of pending's bytes, run by run
	out     []byte
	err     error
}

type segment struct{ stream, n int }

// Streams returns a merged masker over the given destinations; Writer(i)
// writes into outs[i]. Close it to flush every stream; it does not close
// the destinations.
func (m *Masker) Streams(outs ...io.Writer) *Streams {
	s := &Streams{m: m}
	for _, w := range outs {
		s.outs = append(s.outs, m.Writer(w))
	}
	return s
}

// Writer returns the writer of stream i.
func (s *Streams) Writer(i int) io.Writer { return streamInput{s, i} }

type streamInput struct {
	s      *Streams
	stream int
}

func (in streamInput) Write(p []byte) (int, error) { return in.s.write(in.stream, p) }

func (s *Streams) write(stream int, p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return 0, s.err
	}
	set := s.m.patterns()
	if (set == nil || len(set.list) == 0) && len(s.pending) == 0 {
		s.sc.base += int64(len(p))
		if _, err := s.outs[stream].Write(p); err != nil {
			s.err = err
			return 0, err
		}
		return len(p), nil
	}
	for rest := p; len(rest) > 0; {
		n := min(len(rest), chunkSize)
		s.pending = append(s.pending, rest[:n]...)
		if k := len(s.segs); k > 0 && s.segs[k-1].stream == stream {
			s.segs[k-1].n += n
		} else {
			s.segs = append(s.segs, segment{stream, n})
		}
		rest = rest[n:]
		if err := s.process(set, false); err != nil {
			return len(p) - len(rest) - n, err
		}
	}
	return len(p), nil
}

// process decides pending run by run, each into its own stream, and stops
// at the first byte that must still be held back; the caller holds mu.
func (s *Streams) process(set *patterns, final bool) error {
	if set == nil || len(set.list) == 0 {
		set = &patterns{}
		final = true
	}
	for len(s.segs) > 0 {
		seg := &s.segs[0]
		var used int
		s.out, used = s.sc.maskUpTo(s.out[:0], s.pending, set, final, seg.n)
		s.pending = append(s.pending[:0], s.pending[used:]...)
		seg.n -= used
		if len(s.out) > 0 {
			if _, err := s.outs[seg.stream].Write(s.out); err != nil {
				s.err = err
				return err
			}
		}
		if seg.n > 0 {
			break // held back: it may be the start of a secret
		}
		s.segs = s.segs[1:]
	}
	if len(s.segs) == 0 {
		s.segs = nil
	}
	if cap(s.out) > 2*chunkSize {
		s.out = nil
	}
	return nil
}

// Close writes the held-back tail, which can no longer become a secret.
// Further writes fail with ErrClosed.
func (s *Streams) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		if s.err == ErrClosed {
			return nil
		}
		return s.err
	}
	err := s.process(s.m.patterns(), true)
	s.err = ErrClosed
	s.pending = nil
	for _, w := range s.outs {
		if cerr := w.Close(); err == nil {
			err = cerr
		}
	}
	return err
}
