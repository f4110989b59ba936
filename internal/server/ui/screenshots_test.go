package ui_test

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

const demoRunbook = "ops/runbooks/demo-backup-restore.md"

// TestScreenshots writes docs/screenshots/*.png from real runs of the
// sample workspace (examples/workspace): the overview, the runs list,
// the runbook page with its history, a run with its log, the same run in
// Chinese and on a phone. Run:
//
//	go test ./internal/server/ui -run TestScreenshots -screenshots
func TestScreenshots(t *testing.T) {
	if !*screenshots {
		t.Skip("writes docs/screenshots: run with -screenshots")
	}
	ts := startServerFrom(t, "../../../examples/workspace", []string{demoRunbook}, nil)
	root := browser(t)
	alice := newTab(t, root, ts.url)
	alice.login("alice")
	bob := newTab(t, root, ts.url)
	bob.login("bob")
	// Two runs through the UI; bob approves the Go/No-Go gate of each.
	var runPath string
	for i := range 2 {
		alice.go_("/runbooks/" + demoRunbook)
		alice.wait("the run form", `window.htmx && document.querySelector("#run-button")`)
		eval[bool](alice, `document.querySelector("#f-env").value = "dev"; document.querySelector("#run-button").click(); true`)
		alice.wait("the run page", `location.pathname.startsWith("/runs/") && document.querySelector("#log-lines")`)
		runPath = eval[string](alice, `location.pathname`)
		alice.wait("the gate", `document.querySelector("#wait-gate")`)
		if i == 1 {
			alice.wait("the log up to the gate", `document.querySelector("#log-lines .row.mk-wait")`)
			alice.shot("run-gate")
		}
		bob.go_(runPath)
		bob.wait("the approve button", `window.htmx && document.querySelector("#approve")`)
		eval[bool](bob, `document.querySelector("#gate-reason").value = "archive verified"; document.querySelector("#approve").click(); true`)
		alice.wait("the run to finish", `document.querySelector("#run-done")`)
	}
	run, err := ts.st.GetRun(context.Background(), strings.TrimPrefix(runPath, "/runs/"))
	if err != nil {
		t.Fatal(err)
	}
	alice.go_("/")
	alice.wait("the overview", `document.querySelector("#matrix")`)
	alice.shot("overview")
	alice.go_("/runs")
	alice.wait("the runs", `document.querySelector("table.runs tr[data-run]")`)
	alice.shot("runs")
	alice.go_("/runbooks/" + demoRunbook)
	alice.wait("the runbook", `document.querySelector("#history-h")`)
	alice.shot("runbook")
	alice.go_("/runs/" + run.ID)
	alice.wait("the run's log", `document.querySelector("#log-lines").innerText.includes("Run finished")`)
	if !strings.Contains(alice.text("#run-status"), "succeeded") {
		t.Fatalf("the demo run did not succeed: %s", alice.text("main"))
	}
	eval[bool](alice, `document.getElementById("log-ts").click(); true`)
	alice.wait("timestamps", `document.querySelector("#log-lines .row .ts")`)
	alice.shot("run")
	alice.go_("/runs/" + run.ID + "/checklist")
	alice.wait("the checklist", `document.querySelector("#checklist-title")`)
	alice.shot("checklist")
	if err := chromedp.Do(alice.ctx, chromedp.EmulateViewport(390, 844)); err != nil {
		t.Fatal(err)
	}
	alice.go_("/runs/" + run.ID)
	alice.wait("the run on a phone", `document.querySelector("#log-lines").innerText.includes("Run finished")`)
	alice.shot("run-mobile")
	if err := chromedp.Do(alice.ctx, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatal(err)
	}
	eval[bool](alice, `document.getElementById("lang-select").value = "zh"; document.querySelector("form.lang").submit(); true`)
	alice.wait("Chinese", `document.documentElement.lang === "zh" && document.querySelector("#log-lines").innerText.includes("执行结束")`)
	alice.shot("run-zh")
}
