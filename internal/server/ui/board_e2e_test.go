package ui_test

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/server"
)

const boardTask = "2026-03-10-postgres-upgrade-v12-to-v15"

// withReviewedTask serves the example PostgreSQL upgrade task, with
// production needing two reviewers.
func withReviewedTask(t testing.TB) func(*server.Config) {
	return func(c *server.Config) {
		if err := os.CopyFS(filepath.Join(c.Workspace, "ops", "active", boardTask), os.DirFS(filepath.Join("..", "..", "..", "examples", "workspace", "ops", "active", boardTask))); err != nil {
			t.Fatal(err)
		}
		cfg := filepath.Join(c.Workspace, "opsbook.yaml")
		b, err := os.ReadFile(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(cfg, []byte(strings.Replace(string(b), "reviewers: 0", "reviewers: 2", 1)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestBoardReviewButtons: on the planned-operations board, two approvers
// click Review and the production reviews gate reads 2 of 2; the same
// approver clicking twice counts once (fault: a repeated review); a
// runner ticks a checklist item; a viewer is offered neither; a form
// posted without the CSRF token is refused (fault: a cross-site request).
func TestBoardReviewButtons(t *testing.T) {
	root := browser(t)
	ts := startServerWith(t, withReviewedTask(t))
	ts.user(t, "carol", auth.RunbookView, auth.RunbookApprove)
	card := `document.querySelector("#task-` + boardTask + `")`
	detail := card + `.querySelector(".review-detail").innerText`

	bob := newTab(t, root, ts.url)
	bob.login("bob")
	bob.go_("/board")
	bob.wait("the task's review form", card+` && `+card+`.querySelector(".review-approve")`)
	if got := eval[string](bob, detail); !strings.Contains(got, "0 of 2") {
		t.Fatalf("before any review: %q, want 0 of 2", got)
	}
	if eval[bool](bob, card+`.querySelector(".tick") !== null`) {
		t.Errorf("bob (RunbookApprove, not RunbookRun) is offered Tick buttons")
	}
	for i := 0; i < 2; i++ {
		submit(bob, card+`.querySelector(".review-approve").click()`)
		bob.wait("the board after bob's review", `location.search.includes("flash=review_recorded") && `+card+` && `+card+`.querySelector(".my-verdict")`)
		if got := eval[string](bob, detail); !strings.Contains(got, "1 of 2") || !strings.Contains(got, "(bob)") {
			t.Fatalf("after bob's review #%d: %q, want 1 of 2 (bob)", i+1, got)
		}
	}

	carol := newTab(t, root, ts.url)
	carol.login("carol")
	carol.go_("/board")
	carol.wait("the task's review form", card+` && `+card+`.querySelector(".review-approve")`)
	submit(carol, card+`.querySelector(".review-comment").value = "rollback plan read"; `+card+`.querySelector(".review-approve").click()`)
	carol.wait("the board after carol's review", `location.search.includes("flash=review_recorded") && `+card)
	if got := eval[string](carol, detail); !strings.Contains(got, "2 of 2") {
		t.Errorf("after carol's review: %q, want 2 of 2", got)
	}
	reviews, err := ts.st.ListTaskReviews(context.Background(), boardTask)
	if err != nil {
		t.Fatal(err)
	}
	if len(reviews) != 2 || reviews[1].Reviewer != "carol" || reviews[1].Note != "rollback plan read" {
		t.Errorf("stored reviews: %+v, want bob's and carol's", reviews)
	}

	alice := newTab(t, root, ts.url)
	alice.login("alice")
	alice.go_("/board")
	item := card + `.querySelector('li[data-item="backups-done"]')`
	alice.wait("the checklist's Tick button", card+` && `+item+`.querySelector(".tick")`)
	if eval[bool](alice, card+`.querySelector(".review-approve") !== null`) {
		t.Errorf("alice (RunbookRun, not RunbookApprove) is offered a Review button")
	}
	submit(alice, item+`.querySelector(".tick").click()`)
	alice.wait("the ticked item", `location.search.includes("flash=tick_recorded") && `+card+` && `+item+`.dataset.ticked === "true"`)
	if got := eval[string](alice, item+`.innerText`); !strings.Contains(got, "alice") {
		t.Errorf("ticked item: %q, want it to name alice", got)
	}
	ticks, err := ts.st.ListTaskTicks(context.Background(), boardTask)
	if err != nil {
		t.Fatal(err)
	}
	if len(ticks) != 1 || ticks[0].Actor != "alice" || !ticks[0].Ticked {
		t.Errorf("stored ticks: %+v", ticks)
	}

	victor := newTab(t, root, ts.url)
	victor.login("victor")
	victor.go_("/board")
	victor.wait("the task card", card)
	if eval[bool](victor, card+`.querySelector("form") !== null`) {
		t.Errorf("victor (RunbookView only) is offered a form on the task")
	}
	for _, tb := range []*tab{bob, carol, alice, victor} {
		tb.noDialogs()
	}

	// A cross-site form post carries the session cookie but not the token.
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	// Each by a user the route's rule lets through.
	for path, user := range map[string]string{"/board/tasks/" + boardTask + "/review": "carol", "/board/tasks/" + boardTask + "/checklist/teams-notified": "alice"} {
		req, _ := http.NewRequest("POST", ts.url+path, strings.NewReader(url.Values{"verdict": {"approve"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(ts.signIn(t, user))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("POST %s without the CSRF token: %d, want 403", path, resp.StatusCode)
		}
	}
	if reviews, _ := ts.st.ListTaskReviews(context.Background(), boardTask); len(reviews) != 2 || reviews[1].Note != "rollback plan read" {
		t.Errorf("a review without the CSRF token was recorded: %+v", reviews)
	}
	if ticks, _ := ts.st.ListTaskTicks(context.Background(), boardTask); len(ticks) != 1 {
		t.Errorf("a tick without the CSRF token was recorded: %+v", ticks)
	}
}

// submit runs js, which submits a form, and waits until the page it was on
// is gone: the next wait then looks at the answer, not the old page.
func submit(tb *tab, js string) {
	tb.t.Helper()
	eval[bool](tb, `window.__submitted = true; `+js+`; true`)
	tb.wait("the answer to the form", `document.readyState === "complete" && !window.__submitted`)
}
