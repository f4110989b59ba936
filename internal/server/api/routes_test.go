package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/auth/oidctest"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/server"
	"github.com/opsbook/opsbook/internal/store"
)

// routeCase says who may call a route and what a successful call returns.
type routeCase struct {
	// setup prepares what one call needs (a fresh user to delete, a run
	// waiting at a gate, …) and returns the path and body. allowed says
	// whether the calling role is expected to pass the authorisation
	// rule, so denied calls need not build expensive fixtures.
	setup func(h *harness, f *fixtures, role string, allowed bool) (path string, body any)
	ok    int      // status of an allowed call
	allow []string // roles allowed besides admin; public routes list anonymous
	// status overrides the expectation for some roles.
	status map[string]int
	// as replaces the role's credential (logout must not end the session
	// the other cases use).
	as func(h *harness, role string) credential
	// location is the start of the Location an allowed UI call redirects to.
	location string
}

// fixtures are built once per matrix run.
type fixtures struct {
	finishedRun string
	published   string // a published snapshot hash
}

var (
	signedIn = []string{viewer, runner, approver, editor, varEditor, apiKey, scopedAdmin}
	runners  = []string{runner, editor, apiKey}
	everyone = append([]string{anonymous}, signedIn...)
)

// otherProject: the fixture run and snapshot are of the search project,
// which the payments-scoped Admin does not reach.
var otherProject = map[string]int{scopedAdmin: http.StatusForbidden}

func static(path string, body any) func(*harness, *fixtures, string, bool) (string, any) {
	return func(*harness, *fixtures, string, bool) (string, any) { return path, body }
}

// onRun addresses a sub-resource of the finished fixture run.
func onRun(suffix string, body any) func(*harness, *fixtures, string, bool) (string, any) {
	return func(_ *harness, f *fixtures, _ string, _ bool) (string, any) {
		return "/api/v1/runs/" + f.finishedRun + suffix, body
	}
}

// userOf is the user behind a role's credential.
func userOf(role string) string {
	if role == apiKey {
		return runner
	}
	return role
}

var routeCases = map[string]routeCase{
	"GET /healthz":             {setup: static("/healthz", nil), ok: 200, allow: everyone},
	"GET /readyz":              {setup: static("/readyz", nil), ok: 200, allow: everyone},
	"GET /metrics":             {setup: static("/metrics", nil), ok: 200, allow: everyone},
	"GET /api/v1/openapi.json": {setup: static("/api/v1/openapi.json", nil), ok: 200, allow: everyone},
	// A fresh name each call: failures on one name are throttled.
	"POST /api/v1/login": {setup: func(h *harness, _ *fixtures, _ string, _ bool) (string, any) {
		return "/api/v1/login", map[string]string{"name": h.unique("nobody"), "password": "wrong password"}
	}, ok: 401, allow: everyone},
	"POST /api/v1/logout":            {setup: static("/api/v1/logout", nil), ok: 204, allow: signedIn, as: freshSession},
	"GET /api/v1/session":            {setup: static("/api/v1/session", nil), ok: 200, allow: signedIn},
	"GET /api/v1/projects":           {setup: static("/api/v1/projects", nil), ok: 200, allow: signedIn},
	"GET /api/v1/environments":       {setup: static("/api/v1/environments", nil), ok: 200, allow: signedIn},
	"GET /api/v1/runbooks":           {setup: static("/api/v1/runbooks", nil), ok: 200, allow: signedIn},
	"GET /api/v1/runbooks/{path...}": {setup: static("/api/v1/runbooks/"+backupRunbook, nil), ok: 200, allow: signedIn},
	"POST /api/v1/workspace/sync":    {setup: static("/api/v1/workspace/sync", nil), ok: 200, allow: []string{editor, scopedAdmin}},
	"POST /api/v1/snapshots": {setup: static("/api/v1/snapshots", map[string]string{"runbook": searchRunbook}),
		ok: 201, allow: []string{editor}},
	"GET /api/v1/snapshots/{hash}": {setup: func(_ *harness, f *fixtures, _ string, _ bool) (string, any) {
		return "/api/v1/snapshots/" + f.published, nil
	}, ok: 200, allow: signedIn, status: otherProject},
	"GET /api/v1/variables": {setup: static("/api/v1/variables", nil), ok: 200, allow: signedIn},
	"PUT /api/v1/variables/{name}": {setup: static("/api/v1/variables/MATRIX?environment=staging", map[string]any{"value": "v"}),
		ok: 200, allow: []string{varEditor}},
	"DELETE /api/v1/variables/{name}": {setup: func(h *harness, _ *fixtures, _ string, allowed bool) (string, any) {
		name := h.unique("DEL_")
		if allowed {
			h.must(200, admin, "PUT", "/api/v1/variables/"+name+"?environment=staging", map[string]any{"value": "v"})
		}
		return "/api/v1/variables/" + name + "?environment=staging", nil
	}, ok: 204, allow: []string{varEditor}},
	"GET /api/v1/runs": {setup: static("/api/v1/runs", nil), ok: 200, allow: signedIn},
	"POST /api/v1/runs": {setup: static("/api/v1/runs", map[string]any{"runbook": searchRunbook, "environment": "staging"}),
		ok: 201, allow: runners},
	"GET /api/v1/runs/{id}":               {setup: onRun("", nil), ok: 200, allow: signedIn, status: otherProject},
	"GET /api/v1/runs/{id}/events":        {setup: onRun("/events", nil), ok: 200, allow: signedIn, status: otherProject},
	"GET /api/v1/runs/{id}/events/stream": {setup: onRun("/events/stream", nil), ok: 200, allow: signedIn, status: otherProject},
	"POST /api/v1/runs/{id}/notes":        {setup: onRun("/notes", map[string]string{"text": "odd latency"}), ok: 201, allow: runners},
	"POST /api/v1/runs/reported": {setup: func(*harness, *fixtures, string, bool) (string, any) {
		return "/api/v1/runs/reported", reportBody(store.NewRunID())
	}, ok: 201, allow: runners},
	// Allowed callers append to a run they reported themselves; the
	// others are refused by the rule, before the handler.
	"POST /api/v1/runs/{id}/events": {setup: func(h *harness, f *fixtures, role string, allowed bool) (string, any) {
		body := map[string]any{"events": []runbook.Event{{Seq: 1, Type: runbook.EventRunStarted, Text: "Matrix"}}}
		if !allowed {
			return "/api/v1/runs/" + f.finishedRun + "/events", body
		}
		id := store.NewRunID()
		h.must(http.StatusCreated, role, "POST", "/api/v1/runs/reported", reportBody(id))
		return "/api/v1/runs/" + id + "/events", body
	}, ok: 200, allow: runners},
	// Resuming a finished run is refused after authorisation: 409 shows the rule let the caller through.
	"POST /api/v1/runs/{id}/resume": {setup: onRun("/resume", map[string]string{}), ok: 409, allow: runners},
	"POST /api/v1/runs/{id}/cancel": {setup: waitFor(backupRunbook, runbook.WaitKindGate, apiRuns, "/cancel", map[string]string{"reason": "matrix"}),
		ok: 202, allow: runners},
	"POST /api/v1/runs/{id}/gate": {setup: waitFor(backupRunbook, runbook.WaitKindGate, apiRuns, "/gate", map[string]string{"decision": "go", "reason": "dump verified"}),
		ok: 200, allow: []string{approver}},
	"POST /api/v1/runs/{id}/answer": {setup: waitFor(checkRunbook, runbook.WaitKindManual, apiRuns, "/answer", map[string]string{"kind": "manual", "choice": "confirmed"}),
		ok: 200, allow: runners},

	// The matrix's workspace has no task: a caller the rule lets through
	// gets 404 for the task; the rest 401/403. TestTaskReviewsThroughServer
	// reviews and ticks a real task. The task's project is the default one,
	// which the payments-scoped Admin does not reach.
	"GET /api/v1/tasks/{task}/reviews": {setup: static("/api/v1/tasks/"+matrixTask+"/reviews", nil), ok: 404, allow: signedIn, status: otherProject},
	"POST /api/v1/tasks/{task}/reviews": {setup: static("/api/v1/tasks/"+matrixTask+"/reviews", map[string]string{"verdict": "approve"}),
		ok: 404, allow: []string{approver}, status: otherProject},
	"POST /api/v1/tasks/{task}/checklist/{item}": {setup: static("/api/v1/tasks/"+matrixTask+"/checklist/backups-done", map[string]any{}),
		ok: 404, allow: runners, status: otherProject},

	"GET /api/v1/users": {setup: static("/api/v1/users", nil), ok: 200},
	"POST /api/v1/users": {setup: func(h *harness, _ *fixtures, _ string, _ bool) (string, any) {
		return "/api/v1/users", map[string]any{"name": h.unique("new"), "password": "a long enough password"}
	}, ok: 201},
	"GET /api/v1/users/{name}":    {setup: static("/api/v1/users/viewer", nil), ok: 200},
	"PATCH /api/v1/users/{name}":  {setup: victimUser(""), ok: 200},
	"DELETE /api/v1/users/{name}": {setup: victimUser(""), ok: 204},
	"GET /api/v1/teams":           {setup: static("/api/v1/teams", nil), ok: 200},
	"POST /api/v1/teams": {setup: func(h *harness, _ *fixtures, _ string, _ bool) (string, any) {
		return "/api/v1/teams", map[string]string{"name": h.unique("team")}
	}, ok: 201},
	"DELETE /api/v1/teams/{name}": {setup: func(h *harness, _ *fixtures, _ string, _ bool) (string, any) {
		name := h.unique("doomed")
		if _, err := h.st.CreateTeam(context.Background(), name); err != nil {
			h.t.Fatal(err)
		}
		return "/api/v1/teams/" + name, nil
	}, ok: 204},
	"PUT /api/v1/teams/{name}/members/{user}":    {setup: static("/api/v1/teams/viewer/members/approver", nil), ok: 204},
	"DELETE /api/v1/teams/{name}/members/{user}": {setup: victimUser("/members"), ok: 204},
	"POST /api/v1/grants": {setup: static("/api/v1/grants", map[string]any{"team": "approver", "permission": "RunbookView", "environments": []string{"dev"}}),
		ok: 201},
	"DELETE /api/v1/grants/{id}": {setup: func(h *harness, _ *fixtures, _ string, _ bool) (string, any) {
		g := &auth.Grant{Team: "viewer", Permission: auth.RunbookView, Environments: []string{"dev"}}
		if err := h.st.CreateGrant(context.Background(), g); err != nil {
			h.t.Fatal(err)
		}
		return "/api/v1/grants/" + itoa(g.ID), nil
	}, ok: 204},

	"GET /api/v1/apikeys":         {setup: static("/api/v1/apikeys", nil), ok: 200, allow: signedIn},
	"POST /api/v1/apikeys":        {setup: static("/api/v1/apikeys", map[string]string{"name": "matrix"}), ok: 201, allow: signedIn},
	"DELETE /api/v1/apikeys/{id}": {setup: ownAPIKey("/api/v1/apikeys/", ""), ok: 204, allow: signedIn},

	"GET /api/v1/triggers": {setup: static("/api/v1/triggers", nil), ok: 200},
	"POST /api/v1/triggers": {setup: func(h *harness, _ *fixtures, _ string, _ bool) (string, any) {
		return "/api/v1/triggers", map[string]any{"name": h.unique("nightly"), "kind": "schedule", "runbook": searchRunbook,
			"environment": "staging", "schedule": "0 3 * * *", "timezone": "Asia/Shanghai", "service_user": "svc"}
	}, ok: 201},
	"DELETE /api/v1/triggers/{name}": {setup: func(h *harness, _ *fixtures, _ string, _ bool) (string, any) {
		t := h.webhookTrigger(h.unique("doomed"), searchRunbook)
		return "/api/v1/triggers/" + t, nil
	}, ok: 204},
	// Public: the signature authenticates the caller, whoever else they are.
	"POST /api/v1/hooks/{name}": {setup: static("", nil), ok: 202, allow: everyone},
	// Authenticated by the alertmanager trigger's bearer token, whoever calls.
	"POST /api/v1/hooks/{name}/alertmanager": {setup: static("", nil), ok: 202, allow: everyone},
	"GET /api/v1/audit":                      {setup: static("/api/v1/audit", nil), ok: 200},
	"GET /api/v1/audit/verify":               {setup: static("/api/v1/audit/verify", nil), ok: 200},
	"POST /api/v1/retention":                 {setup: static("/api/v1/retention", map[string]int{"keep": 1000}), ok: 200},

	// The web UI, called as a browser: anonymous callers are sent to
	// sign-in (see expect), forbidden ones get the 403 page.
	"GET /static/{file...}": {setup: static("/static/app.css", nil), ok: 200, allow: everyone},
	// Signed-in callers are sent on to the page they came for.
	"GET /login": {setup: static("/login?next=/board", nil), ok: 303, allow: everyone, status: map[string]int{anonymous: 200}, location: "/board"},
	"POST /login": {setup: func(h *harness, _ *fixtures, _ string, _ bool) (string, any) {
		return "/login", url.Values{"name": {h.unique("nobody")}, "password": {"wrong password"}}
	}, ok: 401, allow: everyone},
	"POST /logout": {setup: static("/logout", url.Values{}), ok: 303, allow: signedIn, as: freshSession, location: "/login"},
	// The matrix runs with OIDC sign-in configured against a test
	// provider on loopback: starting sends the browser there, and a
	// callback without the flow cookie is refused.
	"GET /login/oidc":          {setup: static("/login/oidc?next=/board", nil), ok: 303, allow: everyone, location: "http://127.0.0.1:"},
	"GET /login/oidc/callback": {setup: static("/login/oidc/callback?code=x&state=y", nil), ok: 400, allow: everyone},
	"POST /lang":               {setup: static("/lang", url.Values{"lang": {"zh"}, "next": {"/board"}}), ok: 303, allow: everyone, location: "/board"},
	"GET /{$}":                 {setup: static("/", nil), ok: 200, allow: signedIn},
	"GET /board":               {setup: static("/board", nil), ok: 200, allow: signedIn},
	// As the API's task routes: no task in the matrix's workspace, so 404 once through the rule.
	"POST /board/tasks/{task}/review": {setup: static("/board/tasks/"+matrixTask+"/review", url.Values{"verdict": {"approve"}}),
		ok: 404, allow: []string{approver}, status: otherProject},
	"POST /board/tasks/{task}/checklist/{item}": {setup: static("/board/tasks/"+matrixTask+"/checklist/backups-done", url.Values{}),
		ok: 404, allow: runners, status: otherProject},
	"GET /runbooks/{path...}": {setup: static("/runbooks/"+backupRunbook, nil), ok: 200, allow: signedIn},
	"POST /runs": {setup: static("/runs", url.Values{"runbook": {searchRunbook}, "environment": {"staging"}}),
		ok: 303, allow: runners, location: "/runs/"},
	"GET /runs":           {setup: static("/runs?status=succeeded", nil), ok: 200, allow: signedIn},
	"GET /runs/{id}":      {setup: onUIRun("", nil), ok: 200, allow: signedIn, status: otherProject},
	"GET /runs/{id}/live": {setup: onUIRun("/live", nil), ok: 200, allow: signedIn, status: otherProject},
	// The overview's stream never ends: its status is the answer (see streamStatus).
	"GET /overview/live":        {setup: static("/overview/live", nil), ok: 200, allow: signedIn},
	"GET /runs/{id}/log":        {setup: onUIRun("/log", nil), ok: 200, allow: signedIn, status: otherProject},
	"GET /runs/{id}/log/rows":   {setup: onUIRun("/log/rows?line=0", nil), ok: 200, allow: signedIn, status: otherProject},
	"GET /runs/{id}/log/search": {setup: onUIRun("/log/search?q=row", nil), ok: 200, allow: signedIn, status: otherProject},
	"POST /runs/{id}/rerun":     {setup: onUIRun("/rerun", url.Values{}), ok: 303, allow: runners, location: "/runs/"},
	// Resuming a finished run is refused after authorisation.
	"POST /runs/{id}/resume":    {setup: onUIRun("/resume", url.Values{}), ok: 409, allow: runners},
	"POST /publish":             {setup: static("/publish", url.Values{"runbook": {searchRunbook}}), ok: 303, allow: []string{editor}, location: "/runbooks/"},
	"GET /runs/{id}/checklist":  {setup: onUIRun("/checklist", nil), ok: 200, allow: signedIn, status: otherProject},
	"GET /runs/{id}/postmortem": {setup: onUIRun("/postmortem", nil), ok: 200, allow: signedIn, status: otherProject},
	"POST /runs/{id}/cancel": {setup: waitFor(backupRunbook, runbook.WaitKindGate, uiRuns, "/cancel", url.Values{"reason": {"matrix"}}),
		ok: 303, allow: runners, location: "/runs/"},
	"POST /runs/{id}/gate": {setup: waitFor(backupRunbook, runbook.WaitKindGate, uiRuns, "/gate", url.Values{"decision": {"go"}, "reason": {"dump verified"}}),
		ok: 303, allow: []string{approver}, location: "/runs/"},
	"POST /runs/{id}/answer": {setup: waitFor(checkRunbook, runbook.WaitKindManual, uiRuns, "/answer", url.Values{"kind": {"manual"}, "choice": {"confirmed"}}),
		ok: 303, allow: runners, location: "/runs/"},
	"GET /audit":              {setup: static("/audit", nil), ok: 200},
	"GET /admin/users":        {setup: static("/admin/users", nil), ok: 200},
	"GET /admin/teams":        {setup: static("/admin/teams", nil), ok: 200},
	"GET /admin/environments": {setup: static("/admin/environments", nil), ok: 200},
	"GET /admin/triggers":     {setup: static("/admin/triggers", nil), ok: 200},
	"POST /admin/triggers": {setup: func(h *harness, _ *fixtures, _ string, _ bool) (string, any) {
		h.serviceUser()
		return "/admin/triggers", url.Values{"name": {h.unique("ui-nightly")}, "kind": {"schedule"}, "runbook": {searchRunbook},
			"environment": {"staging"}, "schedule": {"0 3 * * *"}, "timezone": {"Asia/Shanghai"}, "service_user": {"svc"}}
	}, ok: 303, location: "/admin/triggers"},
	"POST /admin/triggers/{name}/delete": {setup: func(h *harness, _ *fixtures, _ string, _ bool) (string, any) {
		return "/admin/triggers/" + h.webhookTrigger(h.unique("ui-doomed"), searchRunbook) + "/delete", url.Values{}
	}, ok: 303, location: "/admin/triggers"},
	"GET /admin/variables": {setup: static("/admin/variables", nil), ok: 200, allow: signedIn},
	"POST /admin/users": {setup: func(h *harness, _ *fixtures, _ string, _ bool) (string, any) {
		return "/admin/users", url.Values{"name": {h.unique("new")}, "password": {"a long enough password"}, "team": {"viewer"}}
	}, ok: 303, location: "/admin/users"},
	"POST /admin/teams": {setup: func(h *harness, _ *fixtures, _ string, _ bool) (string, any) {
		return "/admin/teams", url.Values{"name": {h.unique("team")}}
	}, ok: 303, location: "/admin/teams"},
	"POST /admin/teams/members": {setup: func(h *harness, _ *fixtures, _ string, _ bool) (string, any) {
		return "/admin/teams/members", url.Values{"team": {"viewer"}, "user": {h.user(h.unique("member")).Name}}
	}, ok: 303, location: "/admin/teams"},
	"POST /admin/users/{name}/disabled": {setup: func(h *harness, _ *fixtures, _ string, _ bool) (string, any) {
		name := h.unique("leaver")
		h.must(http.StatusCreated, admin, "POST", "/api/v1/users", map[string]string{"name": name, "password": "a long enough password"})
		return "/admin/users/" + name + "/disabled", url.Values{"disabled": {"true"}}
	}, ok: 303, location: "/admin/users"},
	"POST /admin/grants/{id}/delete": {setup: func(h *harness, _ *fixtures, _ string, _ bool) (string, any) {
		var g struct{ ID int64 }
		h.must(http.StatusCreated, admin, "POST", "/api/v1/grants", map[string]any{"team": "viewer", "permission": "RunbookView", "environments": []string{"dev"}}).json(h.t, &g)
		return fmt.Sprintf("/admin/grants/%d/delete", g.ID), url.Values{}
	}, ok: 303, location: "/admin/teams"},
	"POST /admin/grants": {setup: static("/admin/grants", url.Values{"team": {"approver"}, "permission": {"RunbookView"}, "environments": {"dev"}}),
		ok: 303, location: "/admin/teams"},
	"POST /admin/variables": {setup: static("/admin/variables", url.Values{"name": {"MATRIX_UI"}, "environment": {"staging"}, "value": {"v"}}),
		ok: 303, allow: []string{varEditor}, location: "/admin/variables"},
	"GET /account/apikeys":              {setup: static("/account/apikeys", nil), ok: 200, allow: signedIn},
	"POST /account/apikeys":             {setup: static("/account/apikeys", url.Values{"name": {"matrix"}}), ok: 200, allow: signedIn},
	"POST /account/apikeys/{id}/revoke": {setup: ownAPIKey("/account/apikeys/", "/revoke"), ok: 303, allow: signedIn, location: "/account/apikeys"},
}

// matrixTask is a planned operation the matrix's workspace does not have.
const matrixTask = "2026-03-01-db-upgrade-matrix"

// Where the API and the UI address runs.
const (
	apiRuns = "/api/v1/runs/"
	uiRuns  = "/runs/"
)

// onUIRun addresses a UI page of the finished fixture run.
func onUIRun(suffix string, body any) func(*harness, *fixtures, string, bool) (string, any) {
	return func(_ *harness, f *fixtures, _ string, _ bool) (string, any) {
		return uiRuns + f.finishedRun + suffix, body
	}
}

// freshSession gives a role a session of its own, so signing out does not
// end the session the other cases use.
func freshSession(h *harness, role string) credential {
	if role == anonymous || role == apiKey {
		return h.creds[role]
	}
	u, err := h.st.GetUserByName(context.Background(), userOf(role))
	if err != nil {
		h.t.Fatal(err)
	}
	return h.login(u)
}

// ownAPIKey creates an API key of the calling role's user (the viewer's
// for anonymous callers) and addresses it as prefix+id+suffix.
func ownAPIKey(prefix, suffix string) func(*harness, *fixtures, string, bool) (string, any) {
	return func(h *harness, _ *fixtures, role string, _ bool) (string, any) {
		owner := viewer
		if role != anonymous {
			owner = userOf(role)
		}
		u, err := h.st.GetUserByName(context.Background(), owner)
		if err != nil {
			h.t.Fatal(err)
		}
		k := &store.APIKey{UserID: u.ID, Name: "doomed", KeyHash: h.unique("hash"), Hint: "obk_x"}
		if err := h.st.CreateAPIKey(context.Background(), k); err != nil {
			h.t.Fatal(err)
		}
		return prefix + itoa(k.ID) + suffix, nil
	}
}

// waitFor starts a run (as runner, in staging) that waits for kind, for
// callers expected to pass; denied callers get the finished run.
func waitFor(rb, kind, runs, suffix string, body any) func(*harness, *fixtures, string, bool) (string, any) {
	return func(h *harness, f *fixtures, _ string, allowed bool) (string, any) {
		if !allowed {
			return runs + f.finishedRun + suffix, body
		}
		var params map[string]string
		if rb == backupRunbook {
			params = map[string]string{"TOKEN": "matrix-token"}
		}
		run := h.startRun(runner, rb, "staging", params)
		h.waitRun(run.ID, "waiting for "+kind, waitingFor(kind))
		return runs + run.ID + suffix, body
	}
}

// victimUser creates a fresh user (in team viewer) to change or delete.
func victimUser(suffix string) func(*harness, *fixtures, string, bool) (string, any) {
	return func(h *harness, _ *fixtures, _ string, _ bool) (string, any) {
		u := h.user(h.unique("victim"))
		if suffix == "/members" {
			if err := h.st.AddTeamMember(context.Background(), "viewer", u.ID); err != nil {
				h.t.Fatal(err)
			}
			return "/api/v1/teams/viewer/members/" + u.Name, nil
		}
		if suffix == "" {
			return "/api/v1/users/" + u.Name, map[string]any{"display": "Victim"}
		}
		return "/api/v1/users/" + u.Name + suffix, nil
	}
}

func itoa(n int64) string { return string(appendInt(nil, n)) }

func appendInt(b []byte, n int64) []byte {
	if n >= 10 {
		b = appendInt(b, n/10)
	}
	return append(b, byte('0'+n%10))
}

// expect is the status role gets from the route; page routes send
// anonymous callers to sign-in instead of answering 401.
func (c routeCase) expect(role string, page bool) int {
	if s, ok := c.status[role]; ok {
		return s
	}
	if c.allows(role) {
		return c.ok
	}
	if role == anonymous && page {
		return http.StatusSeeOther
	}
	if role == anonymous {
		return http.StatusUnauthorized
	}
	return http.StatusForbidden
}

func (c routeCase) allows(role string) bool { return role == admin || slices.Contains(c.allow, role) }

// isPage reports whether a route belongs to the web UI, whose callers are
// browsers: everything but the API, health and metrics.
func isPage(path string) bool {
	switch path {
	case "/healthz", "/readyz", "/metrics":
		return false
	}
	return !strings.HasPrefix(path, "/api/")
}

// signInPrefix starts the Location of the redirect to the sign-in page.
const signInPrefix = "/login?next="

// check compares one call's response with the expectation for role.
func (c routeCase) check(t *testing.T, role, method, path string, page bool, r response) {
	t.Helper()
	want := c.expect(role, page)
	if r.status != want {
		t.Errorf("%s %s as %s: status %d, want %d\n%s", method, path, role, r.status, want, r.body)
		return
	}
	loc := r.header.Get("Location")
	switch {
	case page && role == anonymous && !c.allows(role):
		if !strings.HasPrefix(loc, signInPrefix) {
			t.Errorf("%s %s as %s: redirected to %q, want the sign-in page (%s…)", method, path, role, loc, signInPrefix)
		}
	case strings.HasPrefix(loc, signInPrefix):
		t.Errorf("%s %s as %s: sent to sign-in (%q) although allowed", method, path, role, loc)
	case c.location != "" && want == http.StatusSeeOther && !strings.HasPrefix(loc, c.location):
		t.Errorf("%s %s as %s: redirected to %q, want %s…", method, path, role, loc, c.location)
	}
	if page && want == http.StatusForbidden && !strings.Contains(r.header.Get("Content-Type"), "text/html") {
		t.Errorf("%s %s as %s: 403 is %q, want the HTML error page", method, path, role, r.header.Get("Content-Type"))
	}
}

// TestRoutePermissions walks every route the server registers — the
// routes.Register of `opsbook serve`, API and UI alike, read from the
// router rather than from a list here — with every role. A route added
// without an entry in routeCases fails the test, as does an entry whose
// route is gone. UI routes are called as a browser calls them.
func TestRoutePermissions(t *testing.T) {
	eachStore(t, func(t *testing.T, dsn string) {
		idp := oidctest.New(t)
		h := newHarnessWith(t, dsn, func(c *server.Config) {
			c.OIDC = &server.OIDCConfig{Issuer: idp.URL, ClientID: oidctest.ClientID, ClientSecret: oidctest.ClientSecret}
		})
		h.publishAll()
		f := &fixtures{}
		run := h.startRun(admin, searchRunbook, "staging", nil)
		h.waitRun(run.ID, "finished", finished)
		f.finishedRun = run.ID
		pub, err := h.st.Published(context.Background(), searchRunbook)
		if err != nil {
			t.Fatal(err)
		}
		f.published = pub.Hash

		seen := map[string]bool{}
		for _, rt := range h.srv.Routes() {
			key := rt.Method + " " + rt.Path
			seen[key] = true
			c, ok := routeCases[key]
			if !ok {
				t.Errorf("route %s (%s) has no expectations in routeCases: add who may call it", key, rt.Rule)
				continue
			}
			if rt.Rule.IsPublic() != slices.Contains(c.allow, anonymous) {
				t.Errorf("route %s: rule is %q but the matrix says anonymous callers are allowed=%v", key, rt.Rule, slices.Contains(c.allow, anonymous))
			}
			page := isPage(rt.Path)
			for _, role := range roles {
				t.Run(key+"/"+role, func(t *testing.T) {
					want := c.expect(role, page)
					allowed := c.allows(role)
					path, body := c.setup(h, f, role, allowed)
					cred := h.creds[role]
					if c.as != nil {
						cred = c.as(h, role)
					}
					if key == "POST /api/v1/hooks/{name}/alertmanager" {
						r := h.alertmanagerHook(h.unique("am"))
						if r.status != want {
							t.Errorf("alertmanager hook as %s: status %d, want %d\n%s", role, r.status, want, r.body)
						}
						return
					}
					if key == "POST /api/v1/hooks/{name}" {
						r := h.signedHook(cred, h.webhookTrigger(h.unique("hook"), searchRunbook), []byte(`{}`))
						if r.status != want {
							t.Errorf("signed webhook as %s: status %d, want %d\n%s", role, r.status, want, r.body)
						}
						return
					}
					var r response
					if key == "GET /overview/live" {
						r = h.streamStatus(cred, path)
						c.check(t, role, rt.Method, path, page, r)
						return
					}
					if page {
						form, _ := body.(url.Values)
						r = h.browse(cred, rt.Method, path, form)
					} else {
						r = h.doWith(cred, rt.Method, path, body)
					}
					c.check(t, role, rt.Method, path, page, r)
				})
			}
		}
		for key := range routeCases {
			if !seen[key] {
				t.Errorf("routeCases has %s but the server registers no such route", key)
			}
		}
		h.cancelActive()
	})
}

// cancelActive cancels runs still waiting so shutdown does not wait for them.
func (h *harness) cancelActive() {
	runs, err := h.st.ListRuns(context.Background(), store.RunFilter{Status: []runbook.RunStatus{runbook.RunPending, runbook.RunRunning, runbook.RunWaiting}, Limit: 1000})
	if err != nil {
		h.t.Fatal(err)
	}
	for _, r := range runs {
		h.do(admin, "POST", "/api/v1/runs/"+r.ID+"/cancel", map[string]string{"reason": "test over"})
	}
}

// reportBody registers a run of the search runbook in staging executing
// in the caller's process (POST /api/v1/runs/reported).
func reportBody(id string) map[string]any {
	return map[string]any{"id": id, "runbook": searchRunbook, "environment": "staging",
		"source": "---\nkind: runbook\ntitle: Matrix\n---\n\n## Steps\n\n### One\n\n```sh {id=one verify=none reason=test}\necho one\n```\n"}
}
