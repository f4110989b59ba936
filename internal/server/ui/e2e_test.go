package ui_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/secret"
	"github.com/opsbook/opsbook/internal/server"
	"github.com/opsbook/opsbook/internal/server/routes"
	"github.com/opsbook/opsbook/internal/store"
)

var screenshots = flag.Bool("screenshots", false, "write UI screenshots of the sample workspace to docs/screenshots (TestScreenshots)")

const (
	backupRunbook = "ops/runbooks/payments-backup.md"
	xssRunbook    = "ops/runbooks/web-xss.md"
	password      = "correct horse battery staple"
)

// testServer is the real server, listening on a loopback port, over a
// temporary SQLite store and a copy of testdata/workspace.
type testServer struct {
	url string
	ws  string // the workspace directory served
	srv *server.Server
	st  *store.Store
}

func startServer(t testing.TB) *testServer {
	t.Helper()
	return startServerWith(t, nil)
}

// startServerWith is startServer with configure applied to the server's
// Config last (OIDC sign-in, …).
func startServerWith(t testing.TB, configure func(*server.Config)) *testServer {
	t.Helper()
	return startServerFrom(t, "testdata/workspace", []string{backupRunbook, xssRunbook}, configure)
}

// startServerFrom serves a copy of the workspace src with the runbooks
// publish published.
func startServerFrom(t testing.TB, src string, publish []string, configure func(*server.Config)) *testServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	dir := t.TempDir()
	ws := filepath.Join(dir, "workspace")
	if err := os.CopyFS(ws, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, filepath.Join(dir, "server.db"))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := secret.NewKeyring("test", bytes.Repeat([]byte{7}, secret.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	cfg := server.Config{Store: st, Workspace: ws, Keys: keys, Workers: 8, ShutdownGrace: 5 * time.Second,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if configure != nil {
		configure(&cfg)
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	routes.Register(srv)
	addr := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- srv.ListenAndServe(ctx, "127.0.0.1:0", func(a net.Addr) { addr <- a }) }()
	var a net.Addr
	select {
	case a = <-addr:
	case err := <-done:
		t.Fatalf("server did not start: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		<-done
		st.Close()
	})
	ts := &testServer{url: "http://" + a.String(), ws: ws, srv: srv, st: st}
	// Roles: alice runs, bob approves, victor only views.
	ts.user(t, "alice", auth.RunbookView, auth.RunbookRun)
	ts.user(t, "bob", auth.RunbookView, auth.RunbookApprove)
	ts.user(t, "victor", auth.RunbookView)
	for _, rb := range publish {
		ts.publish(t, rb)
	}
	return ts
}

func (ts *testServer) user(t testing.TB, name string, perms ...auth.Permission) {
	t.Helper()
	ctx := context.Background()
	hash, err := auth.HashPassword(password)
	if err != nil {
		t.Fatal(err)
	}
	u := &store.User{Name: name, PasswordHash: hash}
	if err := ts.st.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.st.CreateTeam(ctx, name); err != nil {
		t.Fatal(err)
	}
	if err := ts.st.AddTeamMember(ctx, name, u.ID); err != nil {
		t.Fatal(err)
	}
	for _, p := range perms {
		if err := ts.st.CreateGrant(ctx, &auth.Grant{Team: name, Permission: p}); err != nil {
			t.Fatal(err)
		}
	}
}

// publish makes the runbook's current content its published snapshot, as
// POST /api/v1/snapshots does.
func (ts *testServer) publish(t testing.TB, rel string) {
	t.Helper()
	e, ok := ts.srv.Catalog().Get(rel)
	if !ok {
		t.Fatalf("runbook %s not in the test workspace", rel)
	}
	sn := store.Snapshot{Hash: e.Content, Runbook: e.Path, Source: e.Doc.Source, CreatedBy: "test"}
	ctx := context.Background()
	if err := ts.st.PutSnapshot(ctx, sn); err != nil {
		t.Fatal(err)
	}
	if err := ts.st.Publish(ctx, store.Publication{Runbook: e.Path, Hash: e.Content, PublishedBy: "test", PublishedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
}

// shared is the one Chromium every browser test of this binary drives,
// each user in a browser context of its own (see newTab).
var shared struct {
	once   sync.Once
	ctx    context.Context
	cancel func()
	dir    string
	err    error
}

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if shared.cancel != nil {
		shared.cancel()
		os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

// browser is Debian's chromium headless with a fresh profile, started on
// first use. Without it the test skips, except in CI, where it fails.
func browser(t testing.TB) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is not installed; scripts/test.sh installs it (apt-get install chromium)")
		}
		t.Skip("chromium is not installed (apt-get install chromium); skipping the browser tests")
	}
	shared.once.Do(func() {
		if shared.dir, shared.err = os.MkdirTemp("", "opsbook-chromium-"); shared.err != nil {
			return
		}
		alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
			chromedp.ExecPath(path),
			chromedp.Flag("headless", true), chromedp.Flag("no-sandbox", true), chromedp.Flag("disable-gpu", true),
			chromedp.Flag("disable-quic", true), chromedp.Flag("no-first-run", true),
			chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
			chromedp.Flag("disable-sync", true), chromedp.UserDataDir(shared.dir),
			chromedp.WindowSize(1280, 900))
		ctx, cancelCtx := chromedp.NewContext(alloc)
		shared.ctx, shared.cancel = ctx, func() { cancelCtx(); cancelAlloc() }
		shared.err = chromedp.Do(ctx, chromedp.Navigate("about:blank"))
	})
	if shared.err != nil {
		t.Fatalf("start chromium: %v", shared.err)
	}
	return shared.ctx
}

// tab is one user's browser: its own browser context (cookies), with
// every JavaScript dialog recorded and dismissed.
type tab struct {
	t       testing.TB
	ctx     context.Context
	base    string
	mu      sync.Mutex
	dialogs []string
	accept  bool // answer dialogs OK (else Cancel)
}

func newTab(t testing.TB, root context.Context, base string) *tab {
	tb := &tab{t: t, base: base}
	ctx, cancel := chromedp.NewContext(root, chromedp.WithNewBrowserContext(), chromedp.WithListener(func(ev any) {
		if d, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			tb.mu.Lock()
			tb.dialogs = append(tb.dialogs, d.Message)
			accept := tb.accept
			tb.mu.Unlock()
			go chromedp.Call(tb.ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: accept})
		}
	}))
	t.Cleanup(cancel)
	tb.ctx = ctx
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatal(err)
	}
	return tb
}

func (tb *tab) go_(path string) {
	tb.t.Helper()
	if err := chromedp.Do(tb.ctx, chromedp.Navigate(tb.base+path)); err != nil {
		tb.t.Fatalf("navigate to %s: %v", path, err)
	}
}

// eval runs JavaScript in the page and returns its value.
func eval[T any](tb *tab, js string) T {
	tb.t.Helper()
	v, err := chromedp.Run(tb.ctx, chromedp.Evaluate[T](js))
	if err != nil {
		tb.t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// wait polls a JavaScript condition until it holds.
func (tb *tab) wait(what, js string) {
	tb.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok, err := chromedp.Run(tb.ctx, chromedp.Evaluate[bool]("!!("+js+")"))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			body, _ := chromedp.Run(tb.ctx, chromedp.Evaluate[string]("location.href + '\\n' + document.body.innerText"))
			tb.t.Fatalf("timed out waiting for %s (%s); err %v; page:\n%s", what, js, err, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (tb *tab) text(sel string) string {
	tb.t.Helper()
	return eval[string](tb, fmt.Sprintf(`(document.querySelector(%q)||{innerText:""}).innerText`, sel))
}

func (tb *tab) login(name string) {
	tb.t.Helper()
	tb.go_("/")
	tb.wait("the sign-in form", `location.pathname === "/login" && document.querySelector("#sign-in")`)
	eval[bool](tb, fmt.Sprintf(`document.querySelector("#name").value = %q; document.querySelector("#password").value = %q; document.querySelector("#sign-in").click(); true`, name, password))
	tb.wait("the overview after signing in as "+name, `location.pathname === "/" && document.querySelector("#user-menu")`)
}

func (tb *tab) shot(name string) {
	tb.t.Helper()
	if !*screenshots {
		return
	}
	png, err := chromedp.Run(tb.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.t.Fatal(err)
	}
	dir := filepath.Join("..", "..", "..", "docs", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		tb.t.Fatal(err)
	}
}

func (tb *tab) noDialogs() {
	tb.t.Helper()
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if len(tb.dialogs) > 0 {
		tb.t.Errorf("JavaScript dialogs fired: %q", tb.dialogs)
	}
}

const cellJS = `document.querySelector('td[data-runbook="ops/runbooks/payments-backup.md"][data-env="staging"]').dataset.status`

// TestBrowser drives the UI in real Chromium through a run with a gate
// approved by a second user, the checklist, an XSS probe and a user who
// may not run.
func TestBrowser(t *testing.T) {
	ts := startServer(t)
	root := browser(t)

	alice := newTab(t, root, ts.url)
	alice.login("alice")
	if got := eval[string](alice, cellJS); got != "" {
		t.Fatalf("staging cell before any run: status %q, want none", got)
	}

	// The Run form: typed fields, validation next to the field.
	alice.go_("/runbooks/" + backupRunbook)
	alice.wait("the run form", `window.htmx && document.querySelector("#run-button")`)
	if typ := eval[string](alice, `document.querySelector("#p-TOKEN").type`); typ != "password" {
		t.Errorf("secret parameter input type %q, want password", typ)
	}
	envs := eval[string](alice, `[...document.querySelectorAll("#f-env option")].map(o => o.value).join(",")`)
	if envs != "dev,staging,production" {
		t.Errorf("environments offered %q", envs)
	}
	eval[bool](alice, `document.querySelector("#p-ROWS").value = "many"; document.querySelector("#run-button").click(); true`)
	alice.wait("the validation message next to ROWS", `document.querySelector("#e-ROWS")`)
	if msg := alice.text("#e-ROWS"); !strings.Contains(msg, "not an integer") {
		t.Errorf("ROWS message %q", msg)
	}
	if msg := alice.text("#e-TOKEN"); !strings.Contains(msg, "missing") {
		t.Errorf("TOKEN message %q", msg)
	}
	eval[bool](alice, `document.querySelector("#f-env").value = "staging"; document.querySelector("#p-ROWS").value = "3"; document.querySelector("#p-TOKEN").value = "s3cret-token"; document.querySelector("#run-button").click(); true`)
	alice.wait("the run page", `location.pathname.startsWith("/runs/") && document.querySelector("#log-lines")`)
	runPath := eval[string](alice, `location.pathname`)

	// The log arrives live: the first line while the step still runs.
	alice.wait("the first log line", `document.querySelector("#log-lines").innerText.includes("dumping row 1")`)
	if log := alice.text("#log-lines"); strings.Contains(log, "dumping row 3") {
		t.Errorf("the whole step's output arrived at once, not live:\n%s", log)
	}
	alice.wait("the dump step shown running", `document.querySelector('#timeline li[data-step="dump"].st-running')`)
	alice.wait("the rest of the log", `document.querySelector("#log-lines").innerText.includes("dumping row 3")`)
	if log := alice.text("#log-lines"); strings.Contains(log, "s3cret-token") {
		t.Errorf("the secret parameter shows in the log:\n%s", log)
	}
	alice.wait("the gate panel", `document.querySelector("#wait-gate")`)
	if eval[bool](alice, `!!document.querySelector("#approve")`) {
		t.Error("alice holds no RunbookApprove but sees the Approve button")
	}

	// Bob approves from his own session.
	bob := newTab(t, root, ts.url)
	bob.login("bob")
	bob.wait("the gate in 'waiting for me'", `document.querySelector(".gate-item a")`)
	bob.go_(runPath)
	bob.wait("the approve button", `window.htmx && document.querySelector("#approve")`)
	eval[bool](bob, `document.querySelector("#gate-reason").value = "dump verified"; document.querySelector("#approve").click(); true`)

	// Alice's page follows the run to its end over SSE, without reloading.
	alice.wait("the run to succeed", `document.querySelector('#run-status[data-status="succeeded"]')`)
	alice.wait("the checklist link", `document.querySelector("#checklist-link")`)
	alice.wait("the decision and the end in the log", `document.querySelector("#log-lines").innerText.includes("bob decided Go at go") && document.querySelector("#log-lines").innerText.includes("Run finished: succeeded")`)

	alice.go_("/")
	alice.wait("the staging cell to show the run", cellJS+` === "succeeded"`)

	alice.go_(runPath + "/checklist")
	alice.wait("the checklist", `document.querySelector("#checklist-title")`)
	rows := eval[string](alice, `[...document.querySelectorAll("table.checklist tbody tr")].map(r => r.dataset.step + ":" + r.cells[4].innerText.trim()).join(",")`)
	if rows != "dump:succeeded,go:succeeded,finish:succeeded" {
		t.Errorf("checklist rows %q", rows)
	}
	if !strings.Contains(alice.text("table.checklist"), "bob: go — dump verified") {
		t.Errorf("checklist lacks the gate decision:\n%s", alice.text("table.checklist"))
	}
	if _, err := chromedp.Run(alice.ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Media: "print"})
		return err
	})); err != nil {
		t.Fatal(err)
	}
	if d := eval[string](alice, `getComputedStyle(document.querySelector("header.top")).display`); d != "none" {
		t.Errorf("printing shows the navigation (display %q)", d)
	}

	// A runbook carrying script shows it as text and runs none of it.
	alice.go_("/runbooks/" + xssRunbook)
	alice.wait("the XSS probe page", `document.querySelector("article.doc")`)
	if h1 := alice.text("main h1"); h1 != "XSS probe <script>alert('title')</script>" {
		t.Errorf("title %q, want the script tag as text", h1)
	}
	if doc := alice.text("article.doc"); !strings.Contains(doc, "<img src=x onerror=alert('code')>") {
		t.Errorf("code payload not shown as text:\n%s", doc)
	}
	if n := eval[int](alice, `document.querySelectorAll("article.doc script, article.doc [onerror], article.doc a[href^=javascript]").length`); n != 0 {
		t.Errorf("%d script elements, handlers or javascript: links survived sanitising", n)
	}
	time.Sleep(300 * time.Millisecond) // an onerror would have fired by now
	alice.noDialogs()
	bob.noDialogs()

	// Victor may view but not run: no Run button, and 403 from the endpoints anyway.
	victor := newTab(t, root, ts.url)
	victor.login("victor")
	victor.go_("/runbooks/" + backupRunbook)
	victor.wait("the runbook page", `document.querySelector("#no-run")`)
	if eval[bool](victor, `!!document.querySelector("#run-button")`) {
		t.Error("victor sees a Run button without RunbookRun")
	}
	uiStatus, err := chromedp.Run(victor.ctx, chromedp.Evaluate[int](`(async () => {
		const csrf = JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRF-Token"];
		const form = new URLSearchParams({csrf_token: csrf, runbook: "ops/runbooks/payments-backup.md", environment: "staging", param_ROWS: "1", param_TOKEN: "x"});
		return (await fetch("/runs", {method: "POST", body: form})).status;
	})()`, chromedp.EvalAwaitPromise))
	if err != nil || uiStatus != 403 {
		t.Errorf("victor's POST /runs: status %d (%v), want 403", uiStatus, err)
	}
	apiStatus, err := chromedp.Run(victor.ctx, chromedp.Evaluate[int](`(async () => {
		const csrf = JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRF-Token"];
		return (await fetch("/api/v1/runs", {method: "POST", headers: {"X-CSRF-Token": csrf, "Content-Type": "application/json"},
			body: JSON.stringify({runbook: "ops/runbooks/payments-backup.md", environment: "staging", params: {ROWS: "1", TOKEN: "x"}})})).status;
	})()`, chromedp.EvalAwaitPromise))
	if err != nil || apiStatus != 403 {
		t.Errorf("victor's POST /api/v1/runs: status %d (%v), want 403", apiStatus, err)
	}
}
