package ui_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/server"
)

const noisyRunbook = "ops/runbooks/web-noisy.md"

// noisy prints colours, hostile escape sequences, stderr and many lines
// in a first step, then fails in a second.
func noisy(lines int) string {
	return "---\nkind: runbook\ntitle: Noisy log\n---\n\n# Noisy\n\n## Steps\n\n### Colours\n\n" +
		"```sh {id=colours}\nprintf '\\033[32mOK\\033[0m all green\\n'\nprintf '\\033]0;pwned\\007\\033[2Jtitle <b>kept</b> as text\\n'\necho 'to stderr' >&2\n" +
		fmt.Sprintf("seq 1 %d | sed 's/^/many line /'\n```\n\n", lines) +
		"### Fails\n\n```sh {id=fails}\necho 'about to fail'\necho 'boom' >&2\nexit 3\n```\n\n### Never\n\n```sh {id=never}\necho never\n```\n"
}

// finishedRun starts rel as alice and waits until the run is finished.
func finishedRun(t testing.TB, ts *testServer, rel string) runbook.Run {
	t.Helper()
	ctx := context.Background()
	u, err := ts.st.GetUserByName(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	p, err := ts.st.Principal(ctx, u.ID, auth.ViaSession)
	if err != nil {
		t.Fatal(err)
	}
	run, err := ts.srv.StartRun(ctx, p, server.StartRequest{Runbook: rel, Environment: "dev"}, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		r, err := ts.st.GetRun(ctx, run.ID)
		if err == nil && r.Status.Finished() {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s did not finish: %v %v", run.ID, r.Status, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func withRunbook(t testing.TB, rel, text string) func(*server.Config) {
	return func(c *server.Config) {
		if err := os.WriteFile(filepath.Join(c.Workspace, rel), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLogViewer: a finished run of 20,000 lines opens at its end with
// only the rows in view in the DOM; every line is reachable by scrolling;
// colours are classes and hostile escapes do nothing; stderr is told
// apart; steps collapse; the failed step is one click away; search finds
// and marks a line; the download keeps markers and streams.
func TestLogViewer(t *testing.T) {
	const lines = 20000
	ts := startServerWith(t, withRunbook(t, noisyRunbook, noisy(lines)))
	ts.publish(t, noisyRunbook)
	root := browser(t)
	run := finishedRun(t, ts, noisyRunbook)
	alice := newTab(t, root, ts.url)
	alice.login("alice")
	alice.go_("/runs/" + run.ID)

	rows := `document.querySelector("#log-lines")`
	alice.wait("the end of the log", rows+`.innerText.includes("Run finished: failed")`)
	total := eval[int](alice, `parseInt(document.getElementById("log").dataset.total, 10)`)
	if total < lines+8 {
		t.Fatalf("the log counts %d rows, fewer than the %d lines printed", total, lines)
	}
	if n := eval[int](alice, rows+`.children.length`); n > 120 {
		t.Errorf("%d rows in the DOM for a 900 px page: the viewer is not virtualised", n)
	}

	// Fault: lines dropped (the page once trimmed whole chunks). Scroll
	// to the top, the middle and a random line: each is there.
	for _, n := range []int{1, lines / 2, 12345, lines} {
		eval[bool](alice, fmt.Sprintf(`(function(){ var v = window.__logViewer, b = v.box; v.setFollow(false);
			var rs = v.ranges(); b.scrollTop = v.indexOf(rs, %d) * 20; return true; })()`, n+1)) // row 0 is the step's start marker
		alice.wait(fmt.Sprintf("line %d after scrolling", n), fmt.Sprintf(`[...document.querySelectorAll("#log-lines .row")].some(r => r.innerText === "many line %d")`, n))
	}
	eval[bool](alice, `(function(){ window.__logViewer.box.scrollTop = 0; return true; })()`)
	alice.wait("the top of the log", rows+`.innerText.includes("OK all green")`)

	// Colours are classes; an OSC title and a screen erase did nothing.
	if cls := eval[string](alice, `[...document.querySelectorAll("#log-lines .row span")].find(s => s.textContent === "OK").className`); cls != "a-f2" {
		t.Errorf("the green OK has class %q, want a-f2", cls)
	}
	if title := eval[string](alice, `document.title`); strings.Contains(title, "pwned") {
		t.Errorf("output set the page title: %q", title)
	}
	if n := eval[int](alice, rows+`.querySelectorAll("b").length`); n != 0 {
		t.Error("output markup became elements")
	}
	if !strings.Contains(alice.text("#log-lines"), "title <b>kept</b> as text") {
		t.Errorf("the line after the escapes is lost:\n%s", alice.text("#log-lines"))
	}
	if strings.Contains(alice.text("#log-lines"), "│") || strings.Contains(alice.text("#log-lines"), "local") {
		t.Errorf("rows of a step on one host carry a host prefix:\n%s", alice.text("#log-lines"))
	}

	// Timestamps toggle.
	eval[bool](alice, `document.getElementById("log-ts").click(); true`)
	alice.wait("timestamps", `document.querySelector("#log-lines .row .ts")`)
	eval[bool](alice, `document.getElementById("log-ts").click(); true`)
	alice.wait("no timestamps", `!document.querySelector("#log-lines .row .ts")`)

	// Collapse all: one row per step section.
	eval[bool](alice, `document.getElementById("log-collapse").click(); true`)
	alice.wait("collapsed steps", rows+`.children.length <= 3`)
	if n := eval[int](alice, rows+`.querySelectorAll("button.fold[aria-expanded=false]").length`); n != 2 {
		t.Errorf("%d collapsed sections, want 2 (colours, fails)", n)
	}
	eval[bool](alice, `document.getElementById("log-expand").click(); true`)

	// Jump to the failed step.
	eval[bool](alice, `window.__logViewer.box.scrollTop = 0; true`)
	alice.wait("the jump button", `!document.getElementById("log-failed").hidden`)
	eval[bool](alice, `document.getElementById("log-failed").click(); true`)
	alice.wait("the failed step's output", `[...document.querySelectorAll("#log-lines .row.err")].some(r => r.innerText === "boom")`)

	// Search marks the match and says where it is.
	eval[bool](alice, `document.getElementById("log-q").value = "MANY LINE 17017"; document.getElementById("log-search").requestSubmit(); true`)
	alice.wait("the match", `document.querySelector("#log-lines .row.current mark")`)
	if got := alice.text("#log-count"); got != "1 of 1" {
		t.Errorf("match count %q, want 1 of 1", got)
	}
	if got := eval[string](alice, `document.querySelector("#log-lines .row.current").innerText`); got != "many line 17017" {
		t.Errorf("current match row %q", got)
	}

	// stderr is told apart (it arrives where the recorder flushed it).
	eval[bool](alice, `document.getElementById("log-q").value = "to stderr"; document.getElementById("log-search").requestSubmit(); true`)
	alice.wait("the stderr line, marked as stderr", `document.querySelector("#log-lines .row.current.err mark")`)

	// The download keeps markers, streams and every line.
	text, err := chromedp.Run(alice.ctx, chromedp.Evaluate[string](`fetch("/runs/`+run.ID+`/log").then(r => r.text())`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{" == ▶ colours started\n", " out | many line 20000\n", " err | to stderr\n", " err | boom\n", " == ■ fails failed", " == Run finished: failed\n"} {
		if !strings.Contains(text, want) {
			t.Errorf("download lacks %q", want)
		}
	}
	alice.noDialogs()
}

// BenchmarkLogViewer opens a finished run of a million lines in Chromium
// and reports the time to the first rows painted, to the last line shown
// (the viewer opens at the end), and to the first line after jumping to
// the top. Run:
//
//	go test ./internal/server/ui -run '^$' -bench LogViewer -benchtime 5x
func BenchmarkLogViewer(b *testing.B) {
	const lines = 1000000
	ts := startServerWith(b, withRunbook(b, noisyRunbook, noisy(lines)))
	ts.publish(b, noisyRunbook)
	root := browser(b)
	start := time.Now()
	run := finishedRun(b, ts, noisyRunbook)
	b.Logf("the run of %d lines took %s", lines, time.Since(start).Round(time.Millisecond))
	alice := newTab(b, root, ts.url)
	alice.login("alice")
	var paint, last, top float64
	b.ResetTimer()
	for range b.N {
		alice.go_("/runs/" + run.ID)
		alice.wait("the last line", `document.querySelector("#log-lines") && document.querySelector("#log-lines").innerText.includes("Run finished: failed") && window.__logLast === undefined && (window.__logLast = performance.now())`)
		p := eval[float64](alice, `window.__logFirstPaint`)
		l := eval[float64](alice, `window.__logLast`)
		t0 := eval[float64](alice, `window.__logViewer.setFollow(false); window.__logViewer.box.scrollTop = 0; performance.now()`)
		alice.wait("the first line", `[...document.querySelectorAll("#log-lines .row")].some(r => r.innerText === "OK all green") && (window.__logTop = performance.now())`)
		if b.N > 0 {
			b.Logf("timings (ms): %s", eval[string](alice, `(function(){ var n = performance.getEntriesByType("navigation")[0];
				var rows = performance.getEntriesByType("resource").filter(e => e.name.includes("/log/rows")).map(e => Math.round(e.startTime) + "+" + Math.round(e.duration));
				return "page response " + Math.round(n.responseEnd) + ", DOMContentLoaded " + Math.round(n.domContentLoadedEventEnd) + ", rows fetches " + rows.join(" "); })()`))
		}
		paint += p
		last += l
		top += eval[float64](alice, `window.__logTop`) - t0
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(paint/n, "ms-first-paint")
	b.ReportMetric(last/n, "ms-last-line")
	b.ReportMetric(top/n, "ms-jump-to-top")
}
