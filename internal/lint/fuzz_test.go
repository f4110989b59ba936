package lint

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/opsbook/opsbook/internal/markdown"
)

// FuzzDocument checks that the lint rules never panic and always report
// positions inside the document, whatever the parser made of the input.
// (Shell checks are left out: they only hand text to bash -n.)
func FuzzDocument(f *testing.F) {
	for _, dir := range []string{"testdata", "../../docs/examples", "../markdown/testdata"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.md"))
		for _, file := range files {
			if b, err := os.ReadFile(file); err == nil {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		doc, _ := markdown.Parse("f.md", src)
		lines := 1
		for _, c := range src {
			if c == '\n' || c == '\r' {
				lines++
			}
		}
		for _, d := range Document(doc, Options{}) {
			if d.Pos.Line < 1 || d.Pos.Line > lines || d.Pos.Col < 1 {
				t.Fatalf("diagnostic outside the input (%d lines): %v", lines, d)
			}
		}
		if _, assigned := shellRefs(string(src)); assigned == nil {
			t.Fatal("shellRefs returned no map")
		}
		lexicallyClosed(string(src))
	})
}
