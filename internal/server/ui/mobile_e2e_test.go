package ui_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/opsbook/opsbook/internal/runbook"
)

// phoneProblems measures the run page as it is laid out now and lists
// what breaks the promise for a phone: the header in more than one row,
// the waiting panel (panel, e.g. "#wait-gate") and its first button not
// wholly in the first screen or not above the timeline, a page wider than
// the screen. Empty when the page keeps it.
func phoneProblems(tb *tab, panel string) []string {
	tb.t.Helper()
	raw := eval[string](tb, fmt.Sprintf(`(function(){
		var out = [], vh = window.innerHeight, vw = window.innerWidth;
		var header = document.querySelector("header.top").getBoundingClientRect();
		if (header.height > 60) out.push("the header is " + Math.round(header.height) + " px high: more than one row");
		var p = document.querySelector(%q), b = p && p.querySelector("button");
		if (!p || !b) { out.push("no waiting panel with a button"); return JSON.stringify(out); }
		var pr = p.getBoundingClientRect(), br = b.getBoundingClientRect();
		if (pr.top > vh / 2) out.push("the waiting panel starts " + Math.round(pr.top) + " px down, below the first screen's middle (" + vh + " px screen)");
		if (br.bottom > vh) out.push("its button ends " + Math.round(br.bottom) + " px down, below the first screen (" + vh + " px)");
		var tl = document.getElementById("timeline").getBoundingClientRect();
		if (tl.top < pr.top) out.push("the timeline comes before the waiting panel");
		if (document.documentElement.scrollWidth > vw + 2) out.push("the page is " + document.documentElement.scrollWidth + " px wide on a " + vw + " px screen");
		return JSON.stringify(out);
	})()`, panel))
	var out []string
	if err := json.Unmarshal([]byte(raw), &out); err != nil {
		tb.t.Fatal(err)
	}
	return out
}

// TestMobileRunPage: on a 390 × 844 phone a run waiting at its gate shows
// the gate, with its Approve button, in the first screen, above the
// timeline, under a one-row header, without sideways scrolling. The
// check is shown to catch the regressions it guards against: the same
// page with the phone rules of the stylesheet deleted, and with no
// stylesheet at all, fail it.
func TestMobileRunPage(t *testing.T) {
	ts := startServer(t)
	root := browser(t)
	run := ts.startAs(t, "alice", backupRunbook, "staging", map[string]string{"ROWS": "3", "TOKEN": "tok-1234"})
	waitStatus(t, ts, run.ID, runbook.RunWaiting)
	bob := newTab(t, root, ts.url)
	bob.login("bob")
	if err := chromedp.Do(bob.ctx, chromedp.EmulateViewport(390, 844)); err != nil {
		t.Fatal(err)
	}
	ready := `window.htmx && document.querySelector("#wait-gate #approve") && document.querySelector("#log-lines .row")`
	bob.go_("/runs/" + run.ID)
	bob.wait("the gate on a phone", ready)
	if p := phoneProblems(bob, "#wait-gate"); len(p) > 0 {
		t.Errorf("the run page at 390 px: %q", p)
	}

	// Regression: the phone rules lost (the @media block deleted).
	bob.go_("/runs/" + run.ID)
	bob.wait("the gate on a phone", ready)
	deleted := eval[int](bob, `(function(){
		var n = 0;
		for (const sheet of document.styleSheets) {
			if (!sheet.href || !sheet.href.endsWith("/static/app.css")) continue;
			for (let i = sheet.cssRules.length - 1; i >= 0; i--) {
				const r = sheet.cssRules[i];
				if (r instanceof CSSMediaRule && r.conditionText.includes("max-width") && !r.conditionText.includes("print")) { sheet.deleteRule(i); n++; }
			}
		}
		return n;
	})()`)
	if deleted == 0 {
		t.Fatal("found no phone rules in app.css to delete")
	}
	if p := phoneProblems(bob, "#wait-gate"); len(p) == 0 {
		t.Error("the check passes without the stylesheet's phone rules: it proves nothing")
	} else {
		t.Logf("without the phone rules the check reports: %q", p)
	}

	// Regression: no stylesheet at all.
	bob.go_("/runs/" + run.ID)
	bob.wait("the gate on a phone", ready)
	eval[bool](bob, `document.querySelector('link[href="/static/app.css"]').disabled = true; true`)
	if p := phoneProblems(bob, "#wait-gate"); len(p) == 0 {
		t.Error("the check passes without the stylesheet: it proves nothing")
	} else {
		t.Logf("without the stylesheet the check reports: %q", p)
	}
}
