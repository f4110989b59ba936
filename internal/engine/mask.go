package engine

import (
	"bytes"
	"io"
	"sort"
	"strings"
	"sync"
)

// maskText replaces every secret.
const maskText = "***"

// masker replaces secret values in texts and in streamed output. It is the
// engine's seam over secret masking: everything the engine records or shows
// passes through it.
type masker struct {
	mu      sync.RWMutex
	secrets [][]byte // longest first, so a secret containing another is masked whole
	first   [256]bool
}

// newMasker masks the plan's secret parameters and secret variables.
func newMasker(p *Plan, params map[string]string) *masker {
	m := &masker{}
	for _, d := range p.Document.Front.Params {
		if d.SecretParam() {
			m.add(params[d.Name])
		}
	}
	for _, v := range p.Secrets {
		m.add(v)
	}
	return m
}

func (m *masker) add(s string) {
	if s == "" {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, have := range m.secrets {
		if string(have) == s {
			return
		}
	}
	m.secrets = append(m.secrets, []byte(s))
	sort.SliceStable(m.secrets, func(i, j int) bool { return len(m.secrets[i]) > len(m.secrets[j]) })
	m.first[s[0]] = true
}

// String masks a complete text.
func (m *masker) String(s string) string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, sec := range m.secrets {
		if strings.Contains(s, string(sec)) {
			s = strings.ReplaceAll(s, string(sec), maskText)
		}
	}
	return s
}

// Writer returns a writer that masks a stream before passing it to w. A
// secret split across two writes is still masked: the tail of a write that
// could begin a secret is held back until the next write or Close.
func (m *masker) Writer(w io.Writer) *maskWriter { return &maskWriter{m: m, w: w} }

type maskWriter struct {
	m    *masker
	w    io.Writer
	held []byte
	out  []byte
}

func (mw *maskWriter) Write(p []byte) (int, error) {
	mw.m.mu.RLock()
	defer mw.m.mu.RUnlock()
	if len(mw.m.secrets) == 0 {
		return len(p), writeAll(mw.w, p)
	}
	data := p
	if len(mw.held) > 0 {
		data = append(mw.held, p...)
		mw.held = nil
	}
	out := mw.out[:0]
	plain := 0 // start of the bytes not yet copied to out
	j := 0
scan:
	for j < len(data) {
		if !mw.m.first[data[j]] {
			// Skip quickly to the next byte that can start a secret.
			k := j + 1
			for k < len(data) && !mw.m.first[data[k]] {
				k++
			}
			j = k
			continue
		}
		for _, sec := range mw.m.secrets {
			if bytes.HasPrefix(data[j:], sec) {
				out = append(out, data[plain:j]...)
				out = append(out, maskText...)
				j += len(sec)
				plain = j
				continue scan
			}
		}
		for _, sec := range mw.m.secrets {
			if len(data)-j < len(sec) && bytes.HasPrefix(sec, data[j:]) {
				// Could be the start of a secret the next write completes.
				out = append(out, data[plain:j]...)
				mw.held = append(mw.held[:0:0], data[j:]...)
				plain = len(data)
				break scan
			}
		}
		j++
	}
	if plain < len(data) {
		out = append(out, data[plain:]...)
	}
	mw.out = out[:0]
	if len(out) > 0 {
		if err := writeAll(mw.w, out); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// Close writes what was held back.
func (mw *maskWriter) Close() error {
	if len(mw.held) == 0 {
		return nil
	}
	h := mw.held
	mw.held = nil
	return writeAll(mw.w, []byte(mw.m.String(string(h))))
}

func writeAll(w io.Writer, p []byte) error {
	_, err := w.Write(p)
	return err
}
