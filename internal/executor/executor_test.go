package executor

import (
	"bytes"
	"io"
	"testing"
)

// sliceWriter is a writer of an uncomparable type: == on two of them panics.
type sliceWriter []byte

func (w sliceWriter) Write(p []byte) (int, error) { return len(p), nil }

func TestSameWriter(t *testing.T) {
	var a, b bytes.Buffer
	for _, c := range []struct {
		name   string
		x, y   io.Writer
		expect bool
	}{
		{"same buffer", &a, &a, true},
		{"two buffers", &a, &b, false},
		{"nil", nil, nil, false},
		{"uncomparable", sliceWriter{1}, sliceWriter{1}, false},
	} {
		if got := SameWriter(c.x, c.y); got != c.expect {
			t.Errorf("%s: SameWriter = %v, want %v", c.name, got, c.expect)
		}
	}
}
