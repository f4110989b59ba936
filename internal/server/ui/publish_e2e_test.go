package ui_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/opsbook/opsbook/internal/auth"
)

// TestPublishFromUI: an editor publishes a runbook's content from its
// page and sees the snapshot listed as published; publishing a page
// whose runbook changed since it was loaded is refused (nothing
// published); the new content published next becomes the listed
// published snapshot above the old one. A viewer has no button and is
// refused by the server. Faults: a stale page publishing content its
// reader never saw; a user without RunbookEdit forging the form.
func TestPublishFromUI(t *testing.T) {
	const rel = "ops/runbooks/payments-report.md"
	doc := "---\nkind: runbook\ntitle: Payments report\n---\n\n# Report\n\n## Steps\n\n### Report\n\n```sh {id=report}\necho report v1\n```\n"
	ts := startServerWith(t, withRunbook(t, rel, doc))
	ts.user(t, "erin", auth.RunbookView, auth.RunbookRun, auth.RunbookEdit)
	root := browser(t)
	ctx := context.Background()
	content := func() string {
		e, ok := ts.srv.Catalog().Get(rel)
		if !ok {
			t.Fatalf("%s not in the catalog", rel)
		}
		return e.Content
	}
	v1 := content()

	erin := newTab(t, root, ts.url)
	erin.login("erin")
	erin.go_("/runbooks/" + rel)
	erin.wait("the unpublished runbook", `document.querySelector("#publish") && document.querySelector("#no-snapshots")`)
	if state := eval[string](erin, `document.getElementById("snapshot-state").textContent`); state != "unpublished" {
		t.Errorf("snapshot state %q before publishing", state)
	}
	eval[bool](erin, `document.getElementById("publish").click(); true`)
	listed := func(hash string) string {
		return `document.querySelector('#snapshots tr[data-hash="` + hash + `"]')`
	}
	erin.wait("the snapshot listed as published", listed(v1)+` && `+listed(v1)+`.querySelector("[data-published]") && document.querySelector("#flash .flash")`)
	if eval[bool](erin, `!!document.querySelector("#publish")`) {
		t.Error("the Publish button is still offered for the published content")
	}
	if by := eval[string](erin, listed(v1)+`.cells[1].textContent`); by != "erin" {
		t.Errorf("the snapshot is listed as stored by %q, want erin", by)
	}
	if pub, err := ts.st.Published(ctx, rel); err != nil || pub.Hash != v1 || pub.PublishedBy != "erin" {
		t.Fatalf("published %+v %v, want %s by erin", pub, err, v1)
	}

	// The runbook changes while a second page still shows the first
	// content's button: that page may not publish what its reader never saw.
	edit := func(text string) {
		if err := os.WriteFile(filepath.Join(ts.ws, rel), []byte(strings.Replace(doc, "report v1", text, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := ts.srv.Catalog().Sync(); err != nil {
			t.Fatal(err)
		}
	}
	edit("report v2")
	v2 := content()
	erin.go_("/runbooks/" + rel)
	erin.wait("the Publish button for v2", `document.querySelector("#publish") && document.querySelector('#publish-form input[name=content]').value === "`+v2+`"`)
	edit("report v3")
	v3 := content()
	eval[bool](erin, `document.getElementById("publish").click(); true`)
	erin.wait("the refusal", `document.getElementById("error-h")`)
	if msg := erin.text("main"); !strings.Contains(msg, "changed since you looked") {
		t.Errorf("the stale publish's refusal says:\n%s", msg)
	}
	if pub, _ := ts.st.Published(ctx, rel); pub.Hash != v1 {
		t.Fatalf("a stale page published %s", pub.Hash)
	}

	// Published from a fresh page: listed first, and the only one published.
	erin.go_("/runbooks/" + rel)
	erin.wait("the Publish button for v3", `document.querySelector('#publish-form input[name=content]').value === "`+v3+`"`)
	eval[bool](erin, `document.getElementById("publish").click(); true`)
	erin.wait("v3 listed as published", listed(v3)+` && `+listed(v3)+`.querySelector("[data-published]")`)
	order := eval[string](erin, `[...document.querySelectorAll("#snapshots tbody tr")].map(r => r.dataset.hash + (r.querySelector("[data-published]") ? "*" : "")).join(" ")`)
	if order != v3+"* "+v1 {
		t.Errorf("snapshots listed %q, want v3 (published) then v1", order)
	}

	// Victor may only view: no button, and the server refuses the form.
	victor := newTab(t, root, ts.url)
	victor.login("victor")
	edit("report v4")
	victor.go_("/runbooks/" + rel)
	victor.wait("the runbook page", `document.querySelector("#snapshots")`)
	if eval[bool](victor, `!!document.querySelector("#publish")`) {
		t.Error("victor, without RunbookEdit, is offered Publish")
	}
	status, err := chromedp.Run(victor.ctx, chromedp.Evaluate[int](`(async () => {
		const csrf = JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRF-Token"];
		const form = new URLSearchParams({csrf_token: csrf, runbook: "`+rel+`", content: "`+content()+`"});
		return (await fetch("/publish", {method: "POST", body: form})).status;
	})()`, chromedp.EvalAwaitPromise))
	if err != nil || status != http.StatusForbidden {
		t.Errorf("victor's publish: status %d (%v), want 403", status, err)
	}
	if pub, _ := ts.st.Published(ctx, rel); pub.Hash != v3 {
		t.Errorf("published %s after victor's attempt, want v3", pub.Hash)
	}
}
