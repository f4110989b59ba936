package ui_test

import (
	"strings"

	"github.com/chromedp/chromedp"
	"testing"
	"time"
)

const askRunbook = "ops/runbooks/web-ask.md"

// askDoc fails its first step, asks the operator what to do, and has a
// second step that takes a moment.
const askDoc = "---\nkind: runbook\ntitle: Ask on failure\n---\n\n# Ask\n\n## Steps\n\n### Flaky\n\n" +
	"```sh {id=flaky on_fail=ask}\necho 'checking the replica'\necho 'replica lag 93s > 30s' >&2\necho 'giving up' >&2\nexit 1\n```\n\n" +
	"### Next\n\n```sh {id=next}\nsleep 0.3\necho next\n```\n"

// TestStalePanelRace: the answer's response and the stream race to
// update the actions panel. The response is held back in the browser
// until the stream has delivered the run's end; the panel must keep the
// newer state (the run finished, no Cancel button), not the response's
// ("nothing waits", Cancel). Fault injected: a slow response; without the
// sequence check on the panel the test fails. Also: Abort asks first, and
// the guided-failure panel shows the failed step's last stderr lines.
func TestStalePanelRace(t *testing.T) {
	ts := startServerWith(t, withRunbook(t, askRunbook, askDoc))
	ts.publish(t, askRunbook)
	root := browser(t)
	alice := newTab(t, root, ts.url)
	alice.login("alice")
	alice.go_("/runbooks/" + askRunbook)
	alice.wait("the run form", `window.htmx && document.querySelector("#run-button")`)
	eval[bool](alice, `document.querySelector("#f-env").value = "dev"; document.querySelector("#run-button").click(); true`)
	alice.wait("the guided-failure question", `window.htmx && document.querySelector("#wait-ask #choice-skip")`)
	if tail := alice.text("#stderr-tail"); !strings.Contains(tail, "replica lag 93s > 30s\ngiving up") {
		t.Errorf("the panel's stderr tail %q lacks the failed step's stderr", tail)
	}
	if strings.Contains(alice.text("#stderr-tail"), "checking the replica") {
		t.Error("stdout in the stderr tail")
	}
	// On a 390 px phone: the header is one row, and the question comes first.
	if err := chromedp.Do(alice.ctx, chromedp.EmulateViewport(390, 844)); err != nil {
		t.Fatal(err)
	}
	alice.go_(eval[string](alice, `location.pathname`))
	alice.wait("the question on a phone", `window.htmx && document.querySelector("#wait-ask #choice-skip")`)
	if p := phoneProblems(alice, "#wait-ask"); len(p) > 0 {
		t.Errorf("the run page at 390 px: %q", p)
	}
	if err := chromedp.Do(alice.ctx, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatal(err)
	}
	// "Waiting for me" lists the question, and drops it live once answered.
	overview := newTab(t, root, ts.url)
	overview.login("alice")
	overview.wait("the question in 'waiting for me'", `document.querySelector('#waiting-region .wait-item[data-kind="ask"] a')`)

	// Abort asks first; refusing the confirmation sends nothing.
	eval[bool](alice, `document.querySelector("#choice-abort").click(); true`)
	time.Sleep(500 * time.Millisecond)
	alice.mu.Lock()
	asked := len(alice.dialogs)
	alice.dialogs = nil
	alice.mu.Unlock()
	if asked != 1 {
		t.Errorf("%d confirmations before aborting, want 1", asked)
	}
	if !eval[bool](alice, `!!document.querySelector("#wait-ask")`) {
		t.Fatal("the refused Abort was sent anyway")
	}

	// Hold every POST response back 1.5 s, then skip: the stream delivers
	// the next step and the end before the response lands.
	eval[bool](alice, `(function(){
		var send = XMLHttpRequest.prototype.send;
		XMLHttpRequest.prototype.send = function (body) {
			var xhr = this, onload = xhr.onload;
			xhr.onload = function (e) { var self = this; setTimeout(function () { window.__lateLoaded = true; onload.call(self, e); }, 1500); };
			return send.call(this, body);
		};
		return true;
	})()`)
	eval[bool](alice, `document.querySelector("#choice-skip").click(); true`)
	alice.wait("the stream to deliver the end", `document.querySelector('#run-status[data-status="succeeded"]') && document.querySelector("#run-done")`)
	alice.wait("the late response to land", `window.__lateLoaded`)
	time.Sleep(300 * time.Millisecond)
	if !eval[bool](alice, `!!document.querySelector("#run-done")`) || eval[bool](alice, `!!document.querySelector("#cancel")`) {
		t.Errorf("an older response replaced the finished panel:\n%s", alice.text("#panel"))
	}
	overview.wait("the answered question to leave 'waiting for me' without a reload", `!document.querySelector('#waiting-region .wait-item') && document.querySelector("#matrix")`)
	alice.noDialogs()

	// Run again from a step, with the same snapshot and parameters.
	first := eval[string](alice, `location.pathname`)
	eval[bool](alice, `document.getElementById("rerun-from").value = "next"; document.getElementById("rerun").click(); true`)
	alice.wait("the new run", `location.pathname !== `+"`"+`${"`+first+`"}`+"`"+` && document.querySelector('#run-status[data-status="succeeded"]')`)
	alice.wait("the new run's log", `document.querySelector("#log-lines").innerText.includes("Run finished")`)
	if log := alice.text("#log-lines"); strings.Contains(log, "▶ flaky started") || !strings.Contains(log, "▶ next started") {
		t.Errorf("the run from step next ran something else:\n%s", log)
	}
}
