package ui_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

const twelveRunbook = "ops/runbooks/web-twelve.md"

func twelveSteps() string {
	var b strings.Builder
	b.WriteString("---\nkind: runbook\ntitle: Twelve steps\n---\n\n# Twelve\n\n## Steps\n\n")
	for i := 1; i <= 12; i++ {
		fmt.Fprintf(&b, "### Step %d of the operation with a descriptive title\n\n```sh {id=step-%d estimate=1m}\necho step %d\n```\n\n```verify\ntrue\n```\n\n", i, i, i)
	}
	return b.String()
}

// TestChecklistPrintsOnOnePage: the filled checklist of a 12-step run
// prints on one A4 page in Chromium, with the sign-off column and the
// signature line on it.
func TestChecklistPrintsOnOnePage(t *testing.T) {
	ts := startServerWith(t, withRunbook(t, twelveRunbook, twelveSteps()))
	ts.publish(t, twelveRunbook)
	root := browser(t)
	run := finishedRun(t, ts, twelveRunbook)
	alice := newTab(t, root, ts.url)
	alice.login("alice")
	alice.go_("/runs/" + run.ID + "/checklist")
	alice.wait("the checklist", `document.querySelectorAll("table.checklist tbody tr").length === 12`)
	var pdf []byte
	if _, err := chromedp.Run(alice.ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		res, err := chromedp.Call(ctx, page.PrintToPDF, page.PrintToPDFParams{PaperWidth: 8.27, PaperHeight: 11.69})
		pdf = []byte(res.Data)
		return err
	})); err != nil {
		t.Fatal(err)
	}
	pages := len(regexp.MustCompile(`/Type\s*/Page[^s]`).FindAll(pdf, -1))
	if pages != 1 {
		t.Errorf("the 12-step checklist prints on %d A4 pages, want 1", pages)
	}
	// The sign-off column is inside the printed width (A4 minus margins at 96 dpi ≈ 720 px).
	if _, err := chromedp.Run(alice.ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Media: "print"})
		return err
	})); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(alice.ctx, chromedp.EmulateViewport(720, 1000)); err != nil {
		t.Fatal(err)
	}
	right := eval[float64](alice, `document.querySelector("table.checklist td.signoff").getBoundingClientRect().right`)
	if right > 720 {
		t.Errorf("the sign-off column ends at %.0f px, past the printed width of 720 px", right)
	}
}
