package ui_test

import (
	"encoding/json"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// zhAllowed are the words a Chinese page may show in Latin letters:
// product and permission names, protocol terms and the decision words
// Go/No-Go the seeds use in both languages.
var zhAllowed = []string{"opsbook", "English", "No-Go", "Go", "RunbookView", "RunbookRun", "RunbookApprove", "RunbookEdit",
	"Admin", "stderr", "stdout", "SSH", "API", "YAML", "opsbook.yaml", "OIDC", "Prometheus"}

// TestChineseComplete walks the main pages in Chinese and fails on any
// text in English that is not content (runbook text, names, output, ids)
// or an allowed proper noun. Fault: a string added to a view or to the
// log's words without its translation.
func TestChineseComplete(t *testing.T) {
	ts := startServerWith(t, withRunbook(t, noisyRunbook, noisy(30)))
	ts.publish(t, noisyRunbook)
	root := browser(t)
	run := finishedRun(t, ts, noisyRunbook)
	allowed := append([]string{}, zhAllowed...)
	for _, e := range ts.srv.Catalog().List() {
		allowed = append(allowed, e.Title, e.Path, e.Project)
		for _, s := range e.Doc.Steps {
			allowed = append(allowed, s.ID, s.Title)
		}
		allowed = append(allowed, e.Doc.Front.Owner, string(e.Doc.Front.Change))
		allowed = append(allowed, e.Tags...)
	}
	allowed = append(allowed, ts.srv.Catalog().Workspace().EnvironmentNames()...)
	allowed = append(allowed, "alice", "bob", "victor", "test", "local", run.ID)
	sort.Slice(allowed, func(i, j int) bool { return len(allowed[i]) > len(allowed[j]) })

	alice := newTab(t, root, ts.url)
	alice.login("alice")
	eval[bool](alice, `document.getElementById("lang-select").value = "zh"; document.querySelector("form.lang").submit(); true`)
	alice.wait("Chinese", `document.documentElement.lang === "zh"`)
	english := regexp.MustCompile(`[A-Za-z]{3,}`)
	hash := regexp.MustCompile(`sha256:[0-9a-f]+`)
	pages := []struct{ path, ready string }{
		{"/", `document.querySelector("#matrix")`},
		{"/runs", `document.querySelector("table.runs tr[data-run]")`},
		{"/runbooks/" + noisyRunbook, `document.querySelector("#history-h")`},
		{"/runs/" + run.ID, `document.querySelector("#log-lines .row.mk") && document.querySelector("#log-lines").innerText.includes("执行结束")`},
		{"/no/such/page", `document.getElementById("error-h")`},
	}
	for _, pg := range pages {
		alice.go_(pg.path)
		alice.wait(pg.path, pg.ready)
		// Text nodes outside content: code, preformatted text, command
		// output rows, the rendered document, English-marked detail.
		raw := eval[string](alice, `(function(){
			var out = [], skip = "code, pre, kbd, script, style, noscript, article.doc, .row.out, .row.err, [lang=en], [hidden]";
			var w = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
			for (var n; (n = w.nextNode());) {
				var t = n.textContent.trim();
				if (!t || n.parentElement.closest(skip)) continue;
				out.push(t);
			}
			document.querySelectorAll("[placeholder], [aria-label], [title]").forEach(function (el) {
				if (el.closest("[hidden]")) return;
				["placeholder", "aria-label", "title"].forEach(function (a) { if (el.getAttribute(a)) out.push(el.getAttribute(a)); });
			});
			return JSON.stringify(out);
		})()`)
		var texts []string
		if err := json.Unmarshal([]byte(raw), &texts); err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, text := range texts {
			rest := hash.ReplaceAllString(text, " ")
			for _, a := range allowed {
				if a != "" {
					rest = strings.ReplaceAll(rest, a, " ")
				}
			}
			if english.MatchString(rest) && !seen[text] {
				seen[text] = true
				t.Errorf("%s: English in Chinese mode: %q", pg.path, text)
			}
		}
	}
}
