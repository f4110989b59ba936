package ui_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/server"
	"github.com/opsbook/opsbook/internal/store"
)

const (
	migrateRunbook  = "ops/runbooks/payments-migrate.md"
	migrateRollback = "ops/runbooks/payments-migrate-rollback.md"
)

// The runbook names its rollback document, whose parameters differ: one
// shared with the runbook (TARGET), one enum and one int with defaults.
const migrateDoc = "---\nkind: runbook\ntitle: Migrate payments\nrollback: payments-migrate-rollback.md\nparams:\n  TARGET: {type: string, required: true}\n---\n\n# Migrate\n\n## Steps\n\n### Migrate\n\n```sh {id=migrate}\necho migrating $TARGET\n```\n"

const migrateRollbackDoc = "---\nkind: rollback\ntitle: Roll back the payments migration\nparams:\n  TARGET: {type: string, required: true, description: what to restore}\n  MODE: {type: enum, allowed: [fast, safe], default: safe}\n  COUNT: {type: int, default: 3}\n---\n\n# Roll back\n\n## Rollback steps\n\n### Restore\n\n```sh {id=restore}\necho restoring $TARGET $MODE $COUNT\n```\n"

// TestRollbackFromUI: the runbook page and a run's page offer "Run
// rollback" with the rollback document's own parameters form; it asks
// for confirmation (refused: nothing is sent), enforces the rollback's
// required parameters next to the field, applies its defaults, fills the
// shared parameter from the run, and starts the rollback as a run of its
// own. A viewer sees no form and is refused by the server. Faults: a
// confirmation that does not hold the request back; a required parameter
// left empty; a user without RunbookRun forging the request.
func TestRollbackFromUI(t *testing.T) {
	ts := startServerWith(t, func(c *server.Config) {
		withRunbook(t, migrateRunbook, migrateDoc)(c)
		withRunbook(t, migrateRollback, migrateRollbackDoc)(c)
	})
	ts.publish(t, migrateRunbook)
	ts.publish(t, migrateRollback)
	root := browser(t)
	ctx := context.Background()

	alice := newTab(t, root, ts.url)
	alice.login("alice")
	alice.go_("/runbooks/" + migrateRunbook)
	alice.wait("the rollback form", `window.htmx && document.querySelector("#rollback-run #rb-run-button")`)
	if eval[bool](alice, `document.querySelector("#rollback-run details").open`) {
		t.Error("the rollback form is open before anyone asked for it")
	}
	eval[bool](alice, `document.querySelector("#rollback-run summary").click(); true`)
	fields := eval[string](alice, `[...document.querySelectorAll("#rb-run-form [name^=param_]")].map(e => e.name + "=" + e.value + "/" + (e.placeholder || "")).join(" ")`)
	if fields != "param_TARGET=/ param_MODE=safe/ param_COUNT=/3" {
		t.Errorf("rollback form fields %q, want the rollback's own with its defaults", fields)
	}
	if n := eval[int](alice, `document.querySelectorAll("#run-form").length`); n != 1 {
		t.Errorf("%d forms with the runbook's own id: the rollback form's ids collide", n)
	}

	// Refusing the confirmation sends nothing: the form is complete, so
	// a request sent would start a run.
	eval[bool](alice, `document.querySelector("#rb-f-env").value = "staging"; document.querySelector("#rb-p-TARGET").value = "refused"; document.querySelector("#rb-run-button").click(); true`)
	alice.waitDialogs(1)
	alice.mu.Lock()
	alice.dialogs, alice.accept = nil, true
	alice.mu.Unlock()
	// Confirmed without the required TARGET: the rollback's rule, next to its field.
	eval[bool](alice, `document.querySelector("#rb-p-TARGET").value = ""; document.querySelector("#rb-run-button").click(); true`)
	alice.wait("the message next to TARGET", `document.querySelector("#rb-e-TARGET")`)
	if msg := alice.text("#rb-e-TARGET"); !strings.Contains(msg, "missing") {
		t.Errorf("TARGET message %q", msg)
	}
	if runs, err := ts.st.ListRuns(ctx, store.RunFilter{Runbook: migrateRollback}); err != nil || len(runs) != 0 {
		t.Fatalf("the refused confirmation or the incomplete form started %d runs (%v)", len(runs), err)
	}
	if got := eval[string](alice, `document.querySelector("#rb-f-env").value`); got != "staging" {
		t.Errorf("the environment chosen was lost: %q", got)
	}
	eval[bool](alice, `document.querySelector("#rb-p-TARGET").value = "ledger"; document.querySelector("#rb-run-button").click(); true`)
	alice.wait("the rollback's run page", `location.pathname.startsWith("/runs/") && document.querySelector("#log-lines")`)
	id := strings.TrimPrefix(eval[string](alice, `location.pathname`), "/runs/")
	run := waitFinished(t, ts, id)
	if run.Runbook != migrateRollback || run.Environment != "staging" || run.Params["TARGET"] != "ledger" || run.Params["MODE"] != "safe" || run.Params["COUNT"] != "3" {
		t.Errorf("the rollback ran as %s in %s with %v, want %s in staging with TARGET=ledger and the defaults", run.Runbook, run.Environment, run.Params, migrateRollback)
	}
	if run.CreatedBy != "alice" {
		t.Errorf("the rollback run was started by %q, want alice", run.CreatedBy)
	}

	// A run's page: the form filled from the run's parameters and environment.
	migrated := ts.startAs(t, "alice", migrateRunbook, "dev", map[string]string{"TARGET": "accounts"})
	waitFinished(t, ts, migrated.ID)
	alice.go_("/runs/" + migrated.ID)
	alice.wait("the rollback form on the run page", `window.htmx && document.querySelector("#rollback-run #rb-run-button")`)
	if got := eval[string](alice, `document.querySelector("#rb-p-TARGET").value + "@" + document.querySelector("#rb-f-env").value`); got != "accounts@dev" {
		t.Errorf("the run page's rollback form holds %q, want the run's accounts@dev", got)
	}
	eval[bool](alice, `document.querySelector("#rollback-run summary").click(); document.querySelector("#rb-run-button").click(); true`)
	alice.wait("the second rollback's run page", `location.pathname !== "/runs/`+migrated.ID+`" && location.pathname.startsWith("/runs/") && document.querySelector("#log-lines")`)
	second := waitFinished(t, ts, strings.TrimPrefix(eval[string](alice, `location.pathname`), "/runs/"))
	if second.Runbook != migrateRollback || second.Params["TARGET"] != "accounts" || second.Environment != "dev" {
		t.Errorf("the run page's rollback ran %s in %s with %v", second.Runbook, second.Environment, second.Params)
	}

	// Victor may only view: no form, and the server refuses the request.
	victor := newTab(t, root, ts.url)
	victor.login("victor")
	victor.go_("/runs/" + migrated.ID)
	victor.wait("the run page", `document.querySelector("#log-lines")`)
	if eval[bool](victor, `!!document.querySelector("#rollback-run")`) {
		t.Error("victor, who may not run, is offered the rollback")
	}
	status, err := chromedp.Run(victor.ctx, chromedp.Evaluate[int](`(async () => {
		const csrf = JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRF-Token"];
		const form = new URLSearchParams({csrf_token: csrf, form: "rollback", runbook: "`+migrateRollback+`", environment: "dev", param_TARGET: "x"});
		return (await fetch("/runs", {method: "POST", body: form})).status;
	})()`, chromedp.EvalAwaitPromise))
	if err != nil || status != http.StatusForbidden {
		t.Errorf("victor's rollback start: status %d (%v), want 403", status, err)
	}
	alice.mu.Lock()
	defer alice.mu.Unlock()
	if len(alice.dialogs) != 3 {
		t.Errorf("%d confirmations for 3 confirmed submissions: %q", len(alice.dialogs), alice.dialogs)
	}
}

// waitDialogs waits until the tab has seen n JavaScript dialogs.
func (tb *tab) waitDialogs(n int) {
	tb.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		tb.mu.Lock()
		got := len(tb.dialogs)
		tb.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			tb.t.Fatalf("%d dialogs, want %d", got, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitFinished waits until the run is finished.
func waitFinished(t testing.TB, ts *testServer, id string) runbook.Run {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		r, err := ts.st.GetRun(context.Background(), id)
		if err == nil && r.Status.Finished() {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s did not finish: %s %v", id, r.Status, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
