package ui_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/server"
	"github.com/opsbook/opsbook/internal/store"
)

// zhAllowed are the words a Chinese page may show in Latin letters:
// product and permission names, protocol terms and the decision words
// Go/No-Go the seeds use in both languages; the postmortem's <<FILL: …>>
// markers, which lint looks for in every language.
var zhAllowed = []string{"opsbook", "English", "No-Go", "Go", "RunbookView", "RunbookRun", "RunbookApprove", "RunbookEdit",
	"VariableEdit", "Admin", "stderr", "stdout", "SSH", "API", "YAML", "opsbook.yaml", "OIDC", "Prometheus", "Alertmanager",
	"Webhook", "webhook", "cron", "lint", "<<FILL:", "HMAC-SHA256", "HMAC", "X-Opsbook-Signature", "Europe/Berlin", "UTC", "PDF", "A4", "run.start"}

const manualRunbook = "ops/runbooks/web-manual.md"

// manualDoc waits for an operator to confirm a manual step.
const manualDoc = "---\nkind: runbook\ntitle: Manual switch\n---\n\n# Manual\n\n## Steps\n\n### Flip\n\n```manual {id=flip}\nFlip the switch in the console.\n```\n"

// boardTask is a planned operation of the sample workspace, copied into
// the test workspace so the board has a task to show.
const boardTaskName = "2026-03-10-postgres-upgrade-v12-to-v15"

// TestChineseComplete walks every page in Chinese — the overview with
// what waits, the runs list, runbook pages (parameters, a rollback form),
// a run waiting at its gate and a finished one, its checklist and
// postmortem, the planned-operations board, API keys, every admin page,
// the audit log, the sign-in page and the error pages — and fails on any
// text in English that is not content (runbook text, names, output, ids)
// or an allowed proper noun. Fault: a string added to a view, a message
// or the log's words without its translation (remove one zh message and
// this test names the page and the string).
func TestChineseComplete(t *testing.T) {
	ts := startServerWith(t, func(c *server.Config) {
		withRunbook(t, noisyRunbook, noisy(30))(c)
		withRunbook(t, migrateRunbook, migrateDoc)(c)
		withRunbook(t, migrateRollback, migrateRollbackDoc)(c)
		withRunbook(t, askRunbook, askDoc)(c)
		withRunbook(t, manualRunbook, manualDoc)(c)
		if err := os.CopyFS(filepath.Join(c.Workspace, "ops", "active", boardTaskName), os.DirFS(filepath.Join("..", "..", "..", "examples", "workspace", "ops", "active", boardTaskName))); err != nil {
			t.Fatal(err)
		}
	})
	for _, rb := range []string{noisyRunbook, migrateRunbook, migrateRollback, askRunbook, manualRunbook} {
		ts.publish(t, rb)
	}
	ts.user(t, "root", auth.Admin)
	ts.user(t, "nobody") // no grants at all
	ctx := context.Background()
	root := browser(t)
	run := finishedRun(t, ts, noisyRunbook)
	gated := ts.startAs(t, "alice", backupRunbook, "staging", map[string]string{"ROWS": "1", "TOKEN": "tok-1234"})
	asking := ts.startAs(t, "alice", askRunbook, "dev", nil)
	manual := ts.startAs(t, "alice", manualRunbook, "dev", nil)
	for _, r := range []runbook.Run{gated, asking, manual} {
		waitStatus(t, ts, r.ID, runbook.RunWaiting)
	}
	svc := &store.User{Name: "svc-nightly", Service: true}
	if err := ts.st.CreateUser(ctx, svc); err != nil {
		t.Fatal(err)
	}
	if err := ts.st.CreateTrigger(ctx, &store.Trigger{Name: "nightly", Kind: store.TriggerSchedule, Runbook: backupRunbook, Environment: "dev",
		Params: map[string]string{"ROWS": "1"}, Schedule: "0 3 * * *", Timezone: "UTC", ServiceUser: svc.ID, Enabled: true, CreatedBy: "root"}); err != nil {
		t.Fatal(err)
	}
	if err := ts.st.SetVariable(ctx, store.Variable{Environment: "staging", Name: "REGION", Value: "eu-west-1", UpdatedBy: "root"}); err != nil {
		t.Fatal(err)
	}

	allowed := append([]string{}, zhAllowed...)
	for _, e := range ts.srv.Catalog().List() {
		allowed = append(allowed, e.Title, e.Path, e.Project)
		for _, s := range e.Doc.Steps {
			allowed = append(allowed, s.ID, s.Title)
		}
		for _, p := range e.Doc.Front.Params {
			allowed = append(allowed, p.Name, p.Description, p.Default)
			allowed = append(allowed, p.Allowed...)
		}
		allowed = append(allowed, e.Doc.Front.Owner, string(e.Doc.Front.Change))
		allowed = append(allowed, e.Tags...)
	}
	allowed = append(allowed, ts.srv.Catalog().Workspace().EnvironmentNames()...)
	allowed = append(allowed, "alice", "bob", "victor", "root", "nobody", "svc-nightly", "test", "local", "nightly", "REGION", "eu-west-1", "my-laptop", boardTaskName, run.ID, gated.ID, asking.ID, manual.ID)
	allowed = append(allowed, "exit status") // a failed step's error, as the log recorded it
	sort.Slice(allowed, func(i, j int) bool { return len(allowed[i]) > len(allowed[j]) })

	// The sign-in page, switched to Chinese before signing in.
	anon := newTab(t, root, ts.url)
	anon.go_("/login")
	anon.wait("the sign-in page", `document.getElementById("lang-select")`)
	eval[bool](anon, `document.getElementById("lang-select").value = "zh"; document.querySelector("form.lang").submit(); true`)
	anon.wait("Chinese", `document.documentElement.lang === "zh"`)
	checkChinese(t, anon, allowed, "/login", `document.querySelector("#sign-in")`)

	type pg struct{ path, ready string }
	walk := func(name string, pages []pg) {
		tb := newTab(t, root, ts.url)
		tb.login(name)
		eval[bool](tb, `document.getElementById("lang-select").value = "zh"; document.querySelector("form.lang").submit(); true`)
		tb.wait("Chinese", `document.documentElement.lang === "zh"`)
		for _, p := range pages {
			checkChinese(t, tb, allowed, p.path, p.ready)
		}
	}
	walk("alice", []pg{
		{"/", `document.querySelector("#matrix td[data-run]") && document.querySelector('#waiting-region .wait-item[data-kind="ask"]') && document.querySelector('#waiting-region .wait-item[data-kind="manual"]')`},
		{"/runs/" + asking.ID, `document.querySelector("#wait-ask #choice-skip") && document.querySelector("#stderr-tail")`},
		{"/runs/" + manual.ID, `document.querySelector("#wait-manual #confirm")`},
		{"/runs", `document.querySelector("table.runs tr[data-run]")`},
		{"/runs?status=failed&who=nobody", `document.getElementById("no-runs")`},
		{"/runbooks/" + noisyRunbook, `document.querySelector("#history-h")`},
		{"/runbooks/" + backupRunbook, `document.querySelector("#run-button") && document.querySelector("#history-h")`},
		{"/runbooks/" + migrateRunbook, `document.querySelector("#rollback-run")`},
		{"/runs/" + run.ID, `document.querySelector("#log-lines .row.mk") && document.querySelector("#log-lines").innerText.includes("执行结束")`},
		{"/runs/" + gated.ID, `document.querySelector("#wait-gate") && document.querySelector("#log-lines .row.mk-wait")`},
		{"/runs/" + run.ID + "/checklist", `document.querySelector("#checklist-title")`},
		{"/runs/" + run.ID + "/postmortem", `document.querySelector("main h1")`},
		{"/board", `document.querySelector(".board, #board, main h1")`},
		{"/account/apikeys", `document.querySelector("#k-name")`},
		{"/admin/variables", `document.querySelector("#v-name, main h1")`},
		{"/no/such/page", `document.getElementById("error-h")`},
		{"/runs/r-nosuchrun", `document.getElementById("error-h")`},
		{"/audit", `document.getElementById("error-h")`},
		{"/publish", `document.getElementById("error-h")`},
	})
	walk("root", []pg{
		{"/admin/users", `document.querySelector("#u-name")`},
		{"/admin/teams", `document.querySelector("#g-perm")`},
		{"/admin/environments", `document.querySelector("main h1")`},
		{"/admin/triggers", `document.querySelector("#tr-name")`},
		{"/admin/variables", `document.querySelector("#v-name")`},
		{"/audit", `document.querySelector("main table")`},
		{"/", `document.querySelector("#matrix") && document.querySelector("#waiting-region .gate-item")`},
		{"/runs/" + gated.ID, `document.querySelector("#wait-gate #approve")`},
	})
	walk("nobody", []pg{
		{"/", `document.getElementById("error-h") && document.getElementById("logout")`},
	})
}

var (
	english = regexp.MustCompile(`[A-Za-z]{3,}`)
	hashRE  = regexp.MustCompile(`sha256:[0-9a-f]+`)
)

// checkChinese opens path and reports every English string on it that
// allowed does not explain.
func checkChinese(t *testing.T, tb *tab, allowed []string, path, ready string) {
	t.Helper()
	tb.go_(path)
	tb.wait(path, `document.documentElement.lang === "zh" && (`+ready+`)`)
	// Text nodes outside content: code, preformatted text, command
	// output rows, the rendered document and text its author wrote (a
	// gate's criteria), what the server recorded, marked English.
	raw := eval[string](tb, `(function(){
		var out = [], skip = "code, pre, kbd, script, style, noscript, article.doc:not(#postmortem), .authored, .row.out, .row.err, [lang=en], [hidden]";
		var w = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
		for (var n; (n = w.nextNode());) {
			var t = n.textContent.trim();
			if (!t || n.parentElement.closest(skip)) continue;
			out.push(t);
		}
		document.querySelectorAll("[placeholder], [aria-label], [title], [data-confirm], input[type=submit][value]").forEach(function (el) {
			if (el.closest("[hidden]")) return;
			["placeholder", "aria-label", "title", "data-confirm", "value"].forEach(function (a) {
				if (el.getAttribute(a) && (a !== "value" || el.tagName === "INPUT")) out.push(el.getAttribute(a));
			});
		});
		out.push(document.title);
		return JSON.stringify(out);
	})()`)
	var texts []string
	if err := json.Unmarshal([]byte(raw), &texts); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, text := range texts {
		rest := hashRE.ReplaceAllString(text, " ")
		for _, a := range allowed {
			if a != "" {
				rest = strings.ReplaceAll(rest, a, " ")
			}
		}
		if english.MatchString(rest) && !seen[text] {
			seen[text] = true
			t.Errorf("%s: English in Chinese mode: %q", path, text)
		}
	}
}
