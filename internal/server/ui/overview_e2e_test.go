package ui_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/server"
)

// principalOf is name's identity as the server sees it.
func (ts *testServer) principalOf(t testing.TB, name string) *auth.Principal {
	t.Helper()
	ctx := context.Background()
	u, err := ts.st.GetUserByName(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ts.st.Principal(ctx, u.ID, auth.ViaSession)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// startAs starts rel in env as name, through the same server method the
// API and the UI call.
func (ts *testServer) startAs(t testing.TB, name, rel, env string, params map[string]string) runbook.Run {
	t.Helper()
	run, err := ts.srv.StartRun(context.Background(), ts.principalOf(t, name), server.StartRequest{Runbook: rel, Environment: env, Params: params}, "127.0.0.1")
	if err != nil {
		t.Fatalf("start %s in %s as %s: %v", rel, env, name, err)
	}
	return run
}

// TestOverviewLive: the overview follows runs over the server's event
// stream, without polling and without a reload. A run started in another
// tab appears in its cell (running, with a ticking duration), the gate it
// reaches appears in the approver's "waiting for me", and the approval
// and the run's end reach both; a manual step comes and goes in the
// runner's. (A guided-failure question: TestStalePanelRace.) Fault: an overview that only updates on
// reload (or by polling, which the request count catches).
func TestOverviewLive(t *testing.T) {
	ts := startServerWith(t, withRunbook(t, manualRunbook, manualDoc))
	ts.publish(t, manualRunbook)
	root := browser(t)
	cell := `document.querySelector('td[data-runbook="ops/runbooks/payments-backup.md"][data-env="staging"]')`

	alice := newTab(t, root, ts.url)
	alice.login("alice")
	bob := newTab(t, root, ts.url)
	bob.login("bob")
	for _, tb := range []*tab{alice, bob} {
		// A mark a reload would wipe; the stream connected.
		tb.wait("the overview", `window.htmx && document.querySelector("#matrix")`)
		eval[bool](tb, `window.__noReload = true`)
	}
	if got := eval[string](alice, cell+`.dataset.status`); got != "" {
		t.Fatalf("staging cell before any run: status %q", got)
	}
	if eval[bool](bob, `!!document.querySelector("#waiting-region .gate-item")`) {
		t.Fatal("bob has a gate waiting before any run")
	}

	// Alice starts the run in a second tab, through the Run form.
	starter := newTab(t, root, ts.url)
	starter.login("alice")
	starter.go_("/runbooks/" + backupRunbook)
	starter.wait("the run form", `window.htmx && document.querySelector("#run-button")`)
	eval[bool](starter, `document.querySelector("#f-env").value = "staging"; document.querySelector("#p-ROWS").value = "2"; document.querySelector("#p-TOKEN").value = "tok-1234"; document.querySelector("#run-button").click(); true`)
	starter.wait("the run page", `location.pathname.startsWith("/runs/") && document.querySelector("#log-lines")`)
	runID := strings.TrimPrefix(eval[string](starter, `location.pathname`), "/runs/")

	alice.wait("the cell to show the new run, running", cell+`.dataset.run === "`+runID+`" && ["running", "waiting"].includes(`+cell+`.dataset.status)`)
	alice.wait("its running time ticking in the cell", cell+`.querySelector(".running [data-since]") && /^[0-9]+s$/.test(`+cell+`.querySelector(".running [data-since]").textContent)`)
	bob.wait("the gate in 'waiting for me'", `document.querySelector('#waiting-region .gate-item[data-run="`+runID+`"]')`)
	alice.wait("the cell to show the gate", cell+`.dataset.status === "waiting"`)

	// Bob approves through the API; both overviews follow to the end.
	approver := newTab(t, root, ts.url)
	approver.login("bob")
	status, err := chromedp.Run(approver.ctx, chromedp.Evaluate[int](`(async () => {
		const csrf = JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRF-Token"];
		return (await fetch("/api/v1/runs/`+runID+`/gate", {method: "POST", headers: {"X-CSRF-Token": csrf, "Content-Type": "application/json"},
			body: JSON.stringify({decision: "go", reason: "looks good"})})).status;
	})()`, chromedp.EvalAwaitPromise))
	if err != nil || status != http.StatusOK {
		t.Fatalf("bob's gate decision through the API: %d %v", status, err)
	}
	bob.wait("the approved gate to leave 'waiting for me'", `!document.querySelector("#waiting-region .gate-item")`)
	alice.wait("the cell to show the run succeeded", cell+`.dataset.status === "succeeded" && !`+cell+`.querySelector(".running")`)
	// A manual step reaches the runner's "waiting for me", and leaves it
	// once confirmed (through the API, from another tab).
	manual := ts.startAs(t, "alice", manualRunbook, "dev", nil)
	alice.wait("the manual step in 'waiting for me'", `document.querySelector('#waiting-region .wait-item[data-kind="manual"][data-run="`+manual.ID+`"]')`)
	status, err = chromedp.Run(starter.ctx, chromedp.Evaluate[int](`(async () => {
		const csrf = JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRF-Token"];
		return (await fetch("/api/v1/runs/`+manual.ID+`/answer", {method: "POST", headers: {"X-CSRF-Token": csrf, "Content-Type": "application/json"},
			body: JSON.stringify({kind: "manual", choice: "confirmed"})})).status;
	})()`, chromedp.EvalAwaitPromise))
	if err != nil || status != http.StatusOK {
		t.Fatalf("alice's confirmation through the API: %d %v", status, err)
	}
	alice.wait("the confirmed step to leave 'waiting for me'", `!document.querySelector("#waiting-region .wait-item")`)
	for _, tb := range []*tab{alice, bob} {
		if !eval[bool](tb, `window.__noReload === true`) {
			t.Error("the overview reloaded")
		}
	}

	// No polling: over an observation window longer than the old poll's
	// 5 s period, the page sent no request but its one stream.
	alice.wait("7 s of the page's life", `performance.now() > 7000`)
	requests := eval[string](alice, `performance.getEntriesByType("resource").filter(e => e.initiatorType === "xmlhttprequest" || e.initiatorType === "fetch").map(e => e.name).join(" ")`)
	if requests != "" {
		t.Errorf("the overview sent requests besides its stream: %s", requests)
	}
	if n := eval[int](alice, `document.querySelectorAll("[hx-trigger*=every], [data-hx-trigger*=every]").length`); n != 0 {
		t.Errorf("%d polling elements on the overview", n)
	}
	alice.noDialogs()
}

// TestOverviewStreamScoped: the overview's stream shows a user only what
// the overview page would: a user who may view project payments in
// staging learns nothing of runs in project web, or of payments runs in
// production, nor of their gates — while a run they may view arrives.
// Grants taken away mid-stream apply from the next batch on. Faults: a
// stream that renders every run (or every waiting gate) without the
// caller's grants leaks other projects' run ids and titles; a stream that
// keeps the identity it started with keeps showing revoked runs.
func TestOverviewStreamScoped(t *testing.T) {
	const secret = "ops/runbooks/web-secret.md"
	gated := "---\nkind: runbook\ntitle: Top secret web change\n---\n\n# Secret\n\n## Steps\n\n### Gate\n\n```gate {id=go approvers=1}\nGo?\n```\n\n### After\n\n```sh {id=after}\necho done\n```\n"
	ts := startServerWith(t, withRunbook(t, secret, gated))
	ts.publish(t, secret)
	ts.user(t, "mallory") // no grants yet
	ctx := context.Background()
	var staging []int64 // the grants revoked later
	for _, perm := range []auth.Permission{auth.RunbookView, auth.RunbookApprove, auth.RunbookRun} {
		g := &auth.Grant{Team: "mallory", Permission: perm, Projects: []string{"payments"}, Environments: []string{"staging"}}
		if err := ts.st.CreateGrant(ctx, g); err != nil {
			t.Fatal(err)
		}
		staging = append(staging, g.ID)
	}
	if err := ts.st.CreateGrant(ctx, &auth.Grant{Team: "mallory", Permission: auth.RunbookView, Projects: []string{"payments"}, Environments: []string{"dev"}}); err != nil {
		t.Fatal(err)
	}
	cookie := ts.signIn(t, "mallory")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ts.url+"/overview/live", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.AddCookie(cookie)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	data := make(chan string, 1024)
	go func() {
		defer close(data)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			data <- sc.Text()
		}
	}()

	// Hidden: a web run waiting at its gate, a payments run in production.
	hidden := []runbook.Run{
		ts.startAs(t, "alice", secret, "staging", nil),
		ts.startAs(t, "alice", backupRunbook, "production", map[string]string{"ROWS": "1", "TOKEN": "tok-1234"}),
	}
	for _, r := range hidden {
		waitStatus(t, ts, r.ID, runbook.RunWaiting)
	}
	// Visible: a payments run in staging, which waits at its gate too.
	visible := ts.startAs(t, "alice", backupRunbook, "staging", map[string]string{"ROWS": "1", "TOKEN": "tok-1234"})

	var all strings.Builder
	// until reads the stream until done says so of the latest event.
	until := func(what string, done func(event string) bool) {
		t.Helper()
		deadline := time.After(30 * time.Second)
		var event strings.Builder
		for {
			select {
			case line, ok := <-data:
				if !ok {
					t.Fatalf("the stream ended before %s:\n%s", what, all.String())
				}
				all.WriteString(line + "\n")
				if line != "" {
					event.WriteString(line + "\n")
					continue
				}
				if done(event.String()) {
					return
				}
				event.Reset()
			case <-deadline:
				t.Fatalf("timed out waiting for %s over the stream:\n%s", what, all.String())
			}
		}
	}
	var cellSeen, gateSeen bool
	until("the visible run's cell and gate", func(ev string) bool {
		cellSeen = cellSeen || strings.Contains(ev, `data-run="`+visible.ID+`"`) && strings.Contains(ev, `data-status="waiting"`)
		gateSeen = gateSeen || strings.Contains(ev, `gate-item" data-kind="gate" data-run="`+visible.ID+`"`)
		return cellSeen && gateSeen
	})

	// The staging grants taken away, mid-stream: the gate leaves what
	// waits, and a later staging run is never shown, while a dev run
	// (still granted) is.
	for _, id := range staging {
		if err := ts.st.DeleteGrant(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	until("the gate to leave 'waiting for me'", func(ev string) bool {
		return strings.HasPrefix(ev, "event: waiting\n") && !strings.Contains(ev, visible.ID)
	})
	hidden = append(hidden, ts.startAs(t, "alice", backupRunbook, "staging", map[string]string{"ROWS": "1", "TOKEN": "tok-1234"}))
	canary := ts.startAs(t, "alice", backupRunbook, "dev", map[string]string{"ROWS": "1", "TOKEN": "tok-1234"})
	waitStatus(t, ts, hidden[2].ID, runbook.RunWaiting)
	until("the dev run, still granted", func(ev string) bool {
		return strings.Contains(ev, `data-run="`+canary.ID+`"`) && strings.Contains(ev, `data-status="waiting"`)
	})
	for _, leak := range []string{hidden[0].ID, hidden[1].ID, hidden[2].ID, "Top secret", secret} {
		if strings.Contains(all.String(), leak) {
			t.Errorf("the stream leaked %q to a user who may not view it", leak)
		}
	}
}

func waitStatus(t *testing.T, ts *testServer, id string, want runbook.RunStatus) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		r, err := ts.st.GetRun(context.Background(), id)
		if err == nil && r.Status == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s: status %s (%v), want %s", id, r.Status, err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// BenchmarkOverview measures one overview as the page and each batch of
// its stream compute it (overviewOf: the latest run of every runbook in
// every environment, and what waits), over the sample workspace's
// runbooks with 10,000 runs in the store, as an admin who sees every
// cell. The stream computes it at most every 500 ms per open overview.
func BenchmarkOverview(b *testing.B) {
	ts := startServerFrom(b, "../../../examples/workspace", nil, nil)
	ts.user(b, "root", auth.Admin)
	ctx := context.Background()
	envs := ts.srv.Catalog().Workspace().EnvironmentNames()
	entries := ts.srv.Catalog().List()
	base := time.Now().Add(-24 * time.Hour)
	for i := range 10000 {
		e := entries[i%len(entries)]
		r := &runbook.Run{Runbook: e.Path, Title: e.Title, Environment: envs[i%len(envs)], Status: runbook.RunSucceeded,
			CreatedBy: "alice", CreatedAt: base.Add(time.Duration(i) * time.Second)}
		if err := ts.st.CreateRun(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
	cookie := ts.signIn(b, "root")
	get := func() {
		req, err := http.NewRequest(http.MethodGet, ts.url+"/", nil)
		if err != nil {
			b.Fatal(err)
		}
		req.AddCookie(cookie)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || n == 0 {
			b.Fatalf("GET /: %d, %d bytes", resp.StatusCode, n)
		}
	}
	for b.Loop() {
		get()
	}
	b.ReportMetric(float64(len(entries)*len(envs)), "cells")
}
