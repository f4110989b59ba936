package mask

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
)

var maskCases = []struct {
	name    string
	secrets []string
	in      string
	want    string
}{
	{name: "no secrets", in: "hello", want: "hello"},
	{name: "empty secret ignored", secrets: []string{""}, in: "hello", want: "hello"},
	{name: "single", secrets: []string{"hunter2"}, in: "pw=hunter2!", want: "pw=***!"},
	{name: "whole input", secrets: []string{"hunter2"}, in: "hunter2", want: "***"},
	{name: "repeated", secrets: []string{"s3"}, in: "s3 s3s3 xs3", want: "*** ****** x***"},
	{name: "no match", secrets: []string{"hunter2"}, in: "hunter hunter3 unter2", want: "hunter hunter3 unter2"},
	{name: "several secrets", secrets: []string{"alpha", "beta"}, in: "alpha-beta-gamma", want: "***-***-gamma"},
	{name: "prefix secrets, longest wins", secrets: []string{"abc", "abcdef"}, in: "abcdefg abcx", want: "***g ***x"},
	{name: "prefix secrets given longest first", secrets: []string{"abcdef", "abc"}, in: "abcdefg abcx", want: "***g ***x"},
	{name: "suffix secrets", secrets: []string{"def", "abcdef"}, in: "abcdef def", want: "*** ***"},
	{name: "overlapping secrets hide both", secrets: []string{"abc", "bcdef"}, in: "abcdef!", want: "***!"},
	{name: "self-overlapping secret", secrets: []string{"aba"}, in: "ababa-aba", want: "***-***"},
	{name: "one byte secret", secrets: []string{"x"}, in: "axbxx", want: "a***b******"},
	{name: "utf-8 secret", secrets: []string{"密码123"}, in: "是密码123吗", want: "是***吗"},
	{name: "utf-8 partial is kept", secrets: []string{"密码123"}, in: "密码12", want: "密码12"},
	{
		name:    "multi-line secret and its lines",
		secrets: []string{"-----BEGIN KEY-----\nAAAABBBB\nCC\n-----END KEY-----"},
		in:      "key: AAAABBBB and CC\n-----BEGIN KEY-----\nAAAABBBB\nCC\n-----END KEY-----\n",
		want:    "key: *** and CC\n***\n",
	},
	{name: "CRLF lines", secrets: []string{"line-one\r\nline-two"}, in: "line-two", want: "***"},
	{name: "json escaped", secrets: []string{"pa\"ss\nword"}, in: `{"p":"pa\"ss\nword"}`, want: `{"p":"***"}`},
	{name: "url escaped", secrets: []string{"p@ss/w rd"}, in: "https://u:p%40ss%2Fw+rd@host", want: "https://u:***@host"},
	{name: "replacement-like text", secrets: []string{"tok"}, in: "*** tok ***", want: "*** *** ***"},
}

func TestString(t *testing.T) {
	for _, tt := range maskCases {
		t.Run(tt.name, func(t *testing.T) {
			if got := New(tt.secrets...).String(tt.in); got != tt.want {
				t.Errorf("String(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestNilMasker(t *testing.T) {
	var m *Masker
	if got := m.String("x"); got != "x" {
		t.Errorf("String = %q", got)
	}
	var buf bytes.Buffer
	w := m.Writer(&buf)
	w.Write([]byte("abc"))
	w.Close()
	if buf.String() != "abc" {
		t.Errorf("Writer = %q", buf.String())
	}
}

// writeSplit writes in to a masking Writer in pieces ending at the given
// offsets, then closes it.
func writeSplit(t testing.TB, m *Masker, in []byte, cuts []int) string {
	var buf bytes.Buffer
	w := m.Writer(&buf)
	prev := 0
	for _, c := range append(cuts, len(in)) {
		if n, err := w.Write(in[prev:c]); err != nil || n != c-prev {
			t.Fatalf("Write = %d, %v", n, err)
		}
		prev = c
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func TestWriterEverySplit(t *testing.T) {
	for _, tt := range maskCases {
		t.Run(tt.name, func(t *testing.T) {
			m := New(tt.secrets...)
			in := []byte(tt.in)
			for cut := 0; cut <= len(in); cut++ {
				if got := writeSplit(t, m, in, []int{cut}); got != tt.want {
					t.Errorf("split at %d: %q, want %q", cut, got, tt.want)
				}
			}
			for a := 0; a <= len(in); a++ {
				for b := a; b <= len(in); b++ {
					if got := writeSplit(t, m, in, []int{a, b}); got != tt.want {
						t.Fatalf("split at %d and %d: %q, want %q", a, b, got, tt.want)
					}
				}
			}
			oneByte := make([]int, 0, len(in))
			for i := 1; i < len(in); i++ {
				oneByte = append(oneByte, i)
			}
			if got := writeSplit(t, m, in, oneByte); got != tt.want {
				t.Errorf("byte by byte: %q, want %q", got, tt.want)
			}
		})
	}
}

// recorder keeps each Write separately so tests see what was emitted when.
type recorder struct{ writes []string }

func (r *recorder) Write(p []byte) (int, error) {
	r.writes = append(r.writes, string(p))
	return len(p), nil
}

func (r *recorder) String() string { return strings.Join(r.writes, "") }

func TestWriterHoldsBackOnlyPossibleSecretPrefix(t *testing.T) {
	steps := []struct {
		write string // "" means Flush
		want  string // everything emitted so far
	}{
		{"hello ", "hello "},
		{"hun", "hello "},
		{"", "hello "},
		{"t", "hello "},
		{"er2", "hello ***"},
		{" and hunx", "hello *** and hunx"},
		{" h", "hello *** and hunx "},
		{"unter", "hello *** and hunx "},
	}
	var out recorder
	w := New("hunter2").Writer(&out)
	for _, s := range steps {
		if s.write == "" {
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
		} else if _, err := w.Write([]byte(s.write)); err != nil {
			t.Fatal(err)
		}
		if got := out.String(); got != s.want {
			t.Fatalf("after %q: emitted %q, want %q", s.write, got, s.want)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := out.String(), "hello *** and hunx hunter"; got != want {
		t.Errorf("after Close: %q, want %q", got, want)
	}
	if _, err := w.Write([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close: %v", err)
	}
}

func TestWriterSecretAddedLater(t *testing.T) {
	var out bytes.Buffer
	m := New()
	w := m.Writer(&out)
	w.Write([]byte("token=abc123 "))
	m.Add("abc123")
	w.Write([]byte("token=abc"))
	w.Write([]byte("123 done"))
	w.Close()
	if got, want := out.String(), "token=abc123 token=*** done"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriterReportsUnderlyingError(t *testing.T) {
	w := New("s3cret").Writer(failWriter{})
	if _, err := w.Write([]byte("hello")); err == nil {
		t.Fatal("Write succeeded")
	}
	if _, err := w.Write([]byte("again")); err == nil {
		t.Fatal("second Write succeeded after a failure")
	}
}

func TestConcurrentAddAndWrite(t *testing.T) {
	m := New("first-secret")
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out bytes.Buffer
			w := m.Writer(&out)
			for range 200 {
				w.Write([]byte("x first-secret y "))
			}
			w.Close()
			if strings.Contains(out.String(), "first-secret") {
				t.Errorf("writer %d leaked the secret", i)
			}
		}()
	}
	for i := range 50 {
		m.Add(strings.Repeat("z", i+1) + "later")
	}
	wg.Wait()
}

func FuzzWriter(f *testing.F) {
	f.Add([]byte("pw=hunter2 and hunter2hunter"), "hunter2", "hunt", uint64(1))
	f.Add([]byte("abcdefabc"), "abc", "bcdef", uint64(7))
	f.Add([]byte("是密码123吗密码"), "密码123", "码1", uint64(3))
	f.Fuzz(func(t *testing.T, in []byte, s1, s2 string, seed uint64) {
		// A secret made of Replacement's characters would reappear in
		// the masked text by construction.
		if strings.Contains(s1, "*") || strings.Contains(s2, "*") {
			t.Skip()
		}
		m := New(s1, s2)
		want := m.String(string(in))
		rng := rand.New(rand.NewPCG(seed, uint64(len(in))))
		var cuts []int
		for c := 0; c < len(in); {
			c += 1 + rng.IntN(8)
			if c < len(in) {
				cuts = append(cuts, c)
			}
		}
		got := writeSplit(t, m, in, cuts)
		if got != want {
			t.Fatalf("split %v: %q, String gives %q", cuts, got, want)
		}
		for _, s := range []string{s1, s2} {
			if s != "" && strings.Contains(got, s) {
				t.Fatalf("output %q contains secret %q", got, s)
			}
		}
	})
}

// logText is output that looks like a real command's: mostly ASCII lines
// with the occasional secret.
func logText(size int, secrets []string) []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	words := []string{"INFO", "deploy", "step", "ok", "GET", "/api/v1/items", "200", "latency=12ms", "user=ops", "rows", "migrated", "\n"}
	var b bytes.Buffer
	for b.Len() < size {
		if rng.IntN(500) == 0 {
			b.WriteString(secrets[rng.IntN(len(secrets))])
		} else {
			b.WriteString(words[rng.IntN(len(words))])
		}
		b.WriteByte(' ')
	}
	return b.Bytes()[:size]
}

func BenchmarkWriter(b *testing.B) {
	secrets := []string{"hunter2-prod-db", "AKIAIOSFODNN7EXAMPLE", "s3cr3t/t0ken+value=="}
	benchmarkWriter(b, New(secrets...), logText(4<<20, secrets))
}

func BenchmarkWriterManySecrets(b *testing.B) {
	var secrets []string
	for i := range 50 {
		secrets = append(secrets, "secret-value-"+strings.Repeat(string(rune('A'+i%26)), 1+i%7)+"-x")
	}
	benchmarkWriter(b, New(secrets...), logText(4<<20, secrets))
}

// BenchmarkWriterAdversarial feeds output made of the secret's bytes, where
// every position is a candidate.
func BenchmarkWriterAdversarial(b *testing.B) {
	benchmarkWriter(b, New("aaaaaaaaaaaaaaab", "aaaa"), bytes.Repeat([]byte("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaac"), 4<<20/33))
}

// benchmarkWriter masks data through a Writer in chunks of what a pipe read
// returns.
func benchmarkWriter(b *testing.B, m *Masker, data []byte) {
	const chunk = 32 << 10
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		w := m.Writer(io.Discard)
		for i := 0; i < len(data); i += chunk {
			w.Write(data[i:min(i+chunk, len(data))])
		}
		w.Close()
	}
}

// referenceMask is the definition of masking written the slow, obvious way:
// find every occurrence of every secret, merge overlapping ones, replace
// each merged run with Replacement.
func referenceMask(in string, secrets []string) string {
	type span struct{ start, end int }
	var spans []span
	for s := 0; s < len(in); s++ {
		end := -1
		for _, sec := range secrets {
			if sec != "" && strings.HasPrefix(in[s:], sec) {
				end = max(end, s+len(sec))
			}
		}
		if end < 0 {
			continue
		}
		if n := len(spans); n > 0 && s < spans[n-1].end {
			spans[n-1].end = max(spans[n-1].end, end)
		} else {
			spans = append(spans, span{s, end})
		}
	}
	var b strings.Builder
	prev := 0
	for _, sp := range spans {
		b.WriteString(in[prev:sp.start])
		b.WriteString(Replacement)
		prev = sp.end
	}
	b.WriteString(in[prev:])
	return b.String()
}

func TestAgainstReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(42, 42))
	word := func(alphabet string, n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return string(b)
	}
	for i := range 3000 {
		// A small alphabet makes overlaps and near misses common.
		secrets := make([]string, 1+rng.IntN(4))
		for j := range secrets {
			secrets[j] = word("abc", 1+rng.IntN(6))
		}
		in := word("abcd", rng.IntN(60))
		want := referenceMask(in, secrets)
		m := New(secrets...)
		if got := m.String(in); got != want {
			t.Fatalf("case %d: String(%q) with %q = %q, want %q", i, in, secrets, got, want)
		}
		var cuts []int
		for c := rng.IntN(4); c < len(in); c += 1 + rng.IntN(5) {
			cuts = append(cuts, c)
		}
		if got := writeSplit(t, m, []byte(in), cuts); got != want {
			t.Fatalf("case %d: Writer(%q split %v) with %q = %q, want %q", i, in, cuts, secrets, got, want)
		}
	}
}

// Fault class: a secret printed half on stdout and half on stderr. Masked
// stream by stream, neither half is a secret and both were stored in clear;
// Streams masks them as the one stream they were written as.
func TestStreamsMaskASecretSplitAcrossStreams(t *testing.T) {
	type write struct {
		stream int
		text   string
	}
	tests := []struct {
		name           string
		secrets        []string
		writes         []write
		stdout, stderr string
	}{
		{"split across streams", []string{"hunter2-SECRET"}, []write{{0, "token=hunter2-"}, {1, "SECRET and more\n"}}, "token=***", " and more\n"},
		{"split three ways", []string{"abcdefgh"}, []write{{1, "x abc"}, {0, "def"}, {1, "gh y"}}, "", "x *** y"},
		{"each stream its own secret", []string{"alpha", "bravo"}, []write{{0, "alpha "}, {1, "bravo "}, {0, "alp"}, {1, "zzz"}, {0, "ha\n"}}, "*** ***\n", "*** zzz"},
		{"no secret: order and streams kept", []string{"never"}, []write{{0, "out1 "}, {1, "err1 "}, {0, "out2"}}, "out1 out2", "err1 "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			s := New(tt.secrets...).Streams(&out, &errOut)
			for _, w := range tt.writes {
				if _, err := s.Writer(w.stream).Write([]byte(w.text)); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if out.String() != tt.stdout || errOut.String() != tt.stderr {
				t.Fatalf("stdout %q stderr %q, want %q %q", out.String(), errOut.String(), tt.stdout, tt.stderr)
			}
			for _, sec := range tt.secrets {
				if strings.Contains(out.String()+errOut.String(), sec) {
					t.Fatalf("secret %q leaked", sec)
				}
			}
		})
	}
}

// TestStreamsEverySplit cuts every case of maskCases at every byte and
// writes the first part on stdout, the rest on stderr: no secret is left in
// either stream, nor in the two read one after the other (the merged
// stream as recorded), and text without a secret is untouched.
func TestStreamsEverySplit(t *testing.T) {
	for _, tc := range maskCases {
		for cut := 0; cut <= len(tc.in); cut++ {
			var out, errOut bytes.Buffer
			s := New(tc.secrets...).Streams(&out, &errOut)
			s.Writer(0).Write([]byte(tc.in[:cut]))
			s.Writer(1).Write([]byte(tc.in[cut:]))
			s.Close()
			if tc.want == tc.in && (out.String() != tc.in[:cut] || errOut.String() != tc.in[cut:]) {
				t.Errorf("%s cut at %d: %q + %q, want the input unchanged", tc.name, cut, out.String(), errOut.String())
			}
			for _, sec := range tc.secrets {
				if sec != "" && strings.Contains(out.String()+errOut.String(), sec) {
					t.Errorf("%s cut at %d: secret %q in %q + %q", tc.name, cut, sec, out.String(), errOut.String())
				}
			}
		}
	}
}
