package markdown

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzParse checks that any input parses without panicking, the same way
// twice, with every position inside the input.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.md")
	for _, s := range seeds {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		doc, diags := Parse("f.md", src)
		doc2, diags2 := Parse("f.md", src)
		if !reflect.DeepEqual(doc, doc2) || !reflect.DeepEqual(diags, diags2) {
			t.Fatal("two parses of the same input differ")
		}
		s := newSource(src)
		lines := len(s.lineStarts)
		for _, d := range diags {
			if d.Pos.Line < 1 || d.Pos.Line > lines || d.Pos.Col < 1 {
				t.Fatalf("diagnostic outside the input (%d lines): %v", lines, d)
			}
		}
		for _, st := range doc.Steps {
			if st.Pos.Line < 1 || st.Pos.Line > lines || st.ID == "" {
				t.Fatalf("bad step %+v", st)
			}
			for _, b := range st.Blocks {
				if b.Pos.Line < 1 || b.Pos.Line > lines {
					t.Fatalf("block outside the input: %+v", b.Pos)
				}
			}
		}
	})
}
