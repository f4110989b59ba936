package report

import (
	"bytes"
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

var updateDocs = flag.Bool("update-docs", false, "rewrite docs/checklist-example.pdf and .png from the 12-step sample")

// pageObject matches a PDF page object but not the /Type /Pages tree node.
var pageObject = regexp.MustCompile(`/Type\s*/Page[^s]`)

// TestChecklistPrintsOnOneA4Page renders the filled checklist of a 12-step
// runbook with headless Chromium and counts the PDF's pages.
func TestChecklistPrintsOnOneA4Page(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is not installed; scripts/test.sh installs it")
		}
		t.Skip("chromium is not installed (scripts/test.sh installs it)")
	}
	dir := t.TempDir()
	for _, lang := range []string{"en", "zh"} {
		t.Run(lang, func(t *testing.T) {
			var page bytes.Buffer
			if err := WriteChecklistHTML(&page, sampleInput(t, lang, true)); err != nil {
				t.Fatal(err)
			}
			html := filepath.Join(dir, "checklist-"+lang+".html")
			if err := os.WriteFile(html, page.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			pdf := filepath.Join(dir, "checklist-"+lang+".pdf")
			headless(t, chromium, dir, "--no-pdf-header-footer", "--print-to-pdf="+pdf, html)
			data, err := os.ReadFile(pdf)
			if err != nil {
				t.Fatalf("chromium wrote no PDF: %v", err)
			}
			if n := len(pageObject.FindAll(data, -1)); n != 1 {
				t.Fatalf("the 12-step checklist prints on %d pages, want 1", n)
			}
			if lang == "en" && *updateDocs {
				png := filepath.Join(dir, "checklist.png")
				headless(t, chromium, dir, "--screenshot="+png, "--window-size=794,1123", "--hide-scrollbars", html)
				for src, dst := range map[string]string{pdf: "checklist-example.pdf", png: "checklist-example.png"} {
					b, err := os.ReadFile(src)
					if err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(filepath.Join("..", "..", "docs", dst), b, 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
		})
	}
}

func headless(t *testing.T, chromium, dir string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
		"--user-data-dir=" + filepath.Join(dir, "profile")}
	cmd := exec.CommandContext(ctx, chromium, append(base, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, out)
	}
}
