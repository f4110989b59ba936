package ui_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/runbook"
)

// TestRunsList: the runs page lists every run newest first a page at a
// time, filters by status, who and runbook, and links each run; a
// runbook's page shows its history.
func TestRunsList(t *testing.T) {
	ts := startServerWith(t, withRunbook(t, noisyRunbook, noisy(10)))
	ts.publish(t, noisyRunbook)
	root := browser(t)
	failed := finishedRun(t, ts, noisyRunbook)
	ctx := context.Background()
	base := time.Now().Add(-time.Hour)
	for i := range 120 { // older than the real run
		r := &runbook.Run{Runbook: backupRunbook, Title: "Back up payments", Environment: []string{"dev", "staging"}[i%2],
			Status: runbook.RunSucceeded, CreatedBy: []string{"alice", "bob", "carol"}[i%3], CreatedAt: base.Add(time.Duration(i) * time.Second)}
		if err := ts.st.CreateRun(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	alice := newTab(t, root, ts.url)
	alice.login("alice")
	alice.go_("/runs")
	alice.wait("the runs list", `document.querySelector("table.runs tbody tr")`)
	rows := `document.querySelectorAll("table.runs tbody tr[data-run]")`
	if n := eval[int](alice, rows+`.length`); n != 50 {
		t.Errorf("%d runs on the first page, want 50", n)
	}
	if first := eval[string](alice, `document.querySelector("table.runs tbody tr").dataset.run`); first != failed.ID {
		t.Errorf("first row %s, want the newest run %s", first, failed.ID)
	}
	// Every run reached once through the pages.
	seen := map[string]bool{}
	for page := 0; page < 5; page++ {
		for _, id := range strings.Fields(eval[string](alice, `[...`+rows+`].map(r => r.dataset.run).join(" ")`)) {
			if seen[id] {
				t.Errorf("run %s on two pages", id)
			}
			seen[id] = true
		}
		if !eval[bool](alice, `!!document.getElementById("runs-older")`) {
			break
		}
		// Wait for the very page the link names, fully parsed: a wait on
		// "before=" alone passes on the second page while the third is
		// still loading, and a half-parsed table has fewer rows.
		next := eval[string](alice, `document.getElementById("runs-older").href`)
		eval[bool](alice, `document.getElementById("runs-older").click(); true`)
		alice.wait("the next page", fmt.Sprintf(`location.href === %q && document.readyState === "complete"`, next))
		alice.wait("its rows", rows+`.length > 0`)
	}
	if len(seen) != 121 {
		t.Errorf("%d runs reached through the pages, want 121", len(seen))
	}
	// Filters.
	alice.go_("/runs?status=failed")
	alice.wait("the failed runs", rows+`.length === 1`)
	alice.go_("/runs?who=bob&environment=staging")
	alice.wait("bob's staging runs", rows+`.length > 0`)
	if got := eval[string](alice, `[...`+rows+`].map(r => r.cells[4].innerText + "/" + r.cells[2].innerText).filter(s => s !== "bob/staging").join(",")`); got != "" {
		t.Errorf("rows that are not bob's in staging: %s", got)
	}
	alice.go_("/runs?from=2001-01-01&to=2001-12-31")
	alice.wait("no runs in 2001", `document.getElementById("no-runs")`)
	alice.go_("/runs?project=nosuchproject")
	alice.wait("no runs in an unknown project", `document.getElementById("no-runs")`)
	// A run links to its page; the runbook's page shows its history.
	alice.go_("/runbooks/" + noisyRunbook)
	alice.wait("the history", `document.querySelector("#history-h") && document.querySelector("table.runs tr[data-run]")`)
	eval[bool](alice, `document.querySelector("table.runs tr[data-run] a").click(); true`)
	alice.wait("the run page from the history", fmt.Sprintf(`location.pathname === "/runs/%s"`, failed.ID))
}

// TestErrorPages: unknown paths, wrong methods, missing runs and refused
// pages answer a page in the user's language with a way out that is not
// the refused page again.
func TestErrorPages(t *testing.T) {
	ts := startServer(t)
	ts.user(t, "nobody")
	root := browser(t)
	alice := newTab(t, root, ts.url)
	alice.login("alice")
	eval[bool](alice, `document.getElementById("lang-select").value = "zh"; document.querySelector("form.lang").submit(); true`)
	alice.wait("Chinese", `document.documentElement.lang === "zh"`)

	alice.go_("/no/such/page")
	alice.wait("the 404 page", `document.getElementById("error-h")`)
	if h := alice.text("#error-h"); !strings.Contains(h, "404") || !strings.Contains(h, "未找到") {
		t.Errorf("404 headline %q", h)
	}
	if href := eval[string](alice, `document.querySelector(".error-links a").getAttribute("href")`); href != "/" {
		t.Errorf("404 way out %q, want the overview", href)
	}
	alice.go_("/runs/r-0000000000000000")
	alice.wait("the run 404 page", `document.getElementById("error-h")`)
	if strings.Contains(alice.text("main"), "opsbook runs") {
		t.Errorf("the run 404 sends a browser user to the CLI:\n%s", alice.text("main"))
	}
	if !eval[bool](alice, `!!document.querySelector('.error-links a[href="/runs"]')`) {
		t.Error("the run 404 page does not link the runs list")
	}
	status, err := chromedp.Run(alice.ctx, chromedp.Evaluate[string](`fetch("/audit", {method: "DELETE", headers: {Accept: "text/html"}}).then(async r => r.status + " " + (await r.text()))`, chromedp.EvalAwaitPromise))
	if err != nil || !strings.HasPrefix(status, "405 ") || !strings.Contains(status, `id="error-h"`) || !strings.Contains(status, "此处不支持该操作") {
		t.Errorf("DELETE /audit: %.300s (%v), want the styled 405 page in Chinese", status, err)
	}
	api, err := chromedp.Run(alice.ctx, chromedp.Evaluate[string](`fetch("/api/v1/nothing").then(async r => r.status + " " + (await r.text()))`, chromedp.EvalAwaitPromise))
	if err != nil || !strings.HasPrefix(api, "404 ") || !strings.Contains(api, `"not_found"`) {
		t.Errorf("GET /api/v1/nothing: %.200s (%v), want a JSON 404", api, err)
	}

	// A refused new-user form keeps what was typed (but the password).
	ts.user(t, "root", auth.Admin)
	root1 := newTab(t, root, ts.url)
	root1.login("root")
	root1.go_("/admin/users")
	root1.wait("the new-user form", `document.getElementById("u-name")`)
	eval[bool](root1, `document.getElementById("u-name").value = "dora"; document.getElementById("u-display").value = "Dora the DBA";
		document.getElementById("u-team").value = "bob"; document.getElementById("u-password").value = "short";
		document.getElementById("u-password").form.submit(); true`)
	root1.wait("the refusal", `document.getElementById("user-error")`)
	if got := eval[string](root1, `[document.getElementById("u-name").value, document.getElementById("u-display").value, document.getElementById("u-team").value, document.getElementById("u-password").value].join("|")`); got != "dora|Dora the DBA|bob|" {
		t.Errorf("the refused form came back as %q, want its fields kept (but the password)", got)
	}

	// No grants at all: the overview refuses; the way out is not the overview.
	nobody := newTab(t, root, ts.url)
	nobody.login("nobody")
	nobody.wait("the 403 page", `document.getElementById("error-h")`)
	if h := nobody.text("#error-h"); !strings.Contains(h, "403") {
		t.Errorf("headline %q", h)
	}
	links := eval[string](nobody, `[...document.querySelectorAll(".error-links a")].map(a => a.getAttribute("href")).join(",")`)
	if strings.Contains(","+links+",", ",/,") || links == "" {
		t.Errorf("the 403 page of a user without grants links %q: back to the same 403", links)
	}
	if !eval[bool](nobody, `!!document.getElementById("error-sign-out")`) {
		t.Error("no way to sign out from the 403 page")
	}
}
