package api_test

import (
	"context"
	"net/http"
	"slices"
	"testing"

	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/runbook"
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
}

// fixtures are built once per matrix run.
type fixtures struct {
	finishedRun string
	published   string // a published snapshot hash
}

var (
	signedIn = []string{viewer, runner, approver, editor, varEditor, apiKey}
	runners  = []string{runner, editor, apiKey}
	everyone = append([]string{anonymous}, signedIn...)
)

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
	"POST /api/v1/login": {setup: static("/api/v1/login", map[string]string{"name": "nobody", "password": "wrong password"}),
		ok: 401, allow: everyone},
	"POST /api/v1/logout": {setup: static("/api/v1/logout", nil), ok: 204, allow: signedIn,
		as: func(h *harness, role string) credential {
			if role == anonymous || role == apiKey {
				return h.creds[role]
			}
			u, err := h.st.GetUserByName(context.Background(), userOf(role))
			if err != nil {
				h.t.Fatal(err)
			}
			return h.login(u)
		}},
	"GET /api/v1/session":            {setup: static("/api/v1/session", nil), ok: 200, allow: signedIn},
	"GET /api/v1/projects":           {setup: static("/api/v1/projects", nil), ok: 200, allow: signedIn},
	"GET /api/v1/environments":       {setup: static("/api/v1/environments", nil), ok: 200, allow: signedIn},
	"GET /api/v1/runbooks":           {setup: static("/api/v1/runbooks", nil), ok: 200, allow: signedIn},
	"GET /api/v1/runbooks/{path...}": {setup: static("/api/v1/runbooks/"+backupRunbook, nil), ok: 200, allow: signedIn},
	"POST /api/v1/workspace/sync":    {setup: static("/api/v1/workspace/sync", nil), ok: 200, allow: []string{editor}},
	"POST /api/v1/snapshots": {setup: static("/api/v1/snapshots", map[string]string{"runbook": searchRunbook}),
		ok: 201, allow: []string{editor}},
	"GET /api/v1/snapshots/{hash}": {setup: func(_ *harness, f *fixtures, _ string, _ bool) (string, any) {
		return "/api/v1/snapshots/" + f.published, nil
	}, ok: 200, allow: signedIn},
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
	"GET /api/v1/runs/{id}":               {setup: onRun("", nil), ok: 200, allow: signedIn},
	"GET /api/v1/runs/{id}/events":        {setup: onRun("/events", nil), ok: 200, allow: signedIn},
	"GET /api/v1/runs/{id}/events/stream": {setup: onRun("/events/stream", nil), ok: 200, allow: signedIn},
	"POST /api/v1/runs/{id}/notes":        {setup: onRun("/notes", map[string]string{"text": "odd latency"}), ok: 201, allow: runners},
	// Resuming a finished run is refused after authorisation: 409 shows the rule let the caller through.
	"POST /api/v1/runs/{id}/resume": {setup: onRun("/resume", map[string]string{}), ok: 409, allow: runners},
	"POST /api/v1/runs/{id}/cancel": {setup: waitFor(backupRunbook, runbook.WaitKindGate, "/cancel", map[string]string{"reason": "matrix"}),
		ok: 202, allow: runners},
	"POST /api/v1/runs/{id}/gate": {setup: waitFor(backupRunbook, runbook.WaitKindGate, "/gate", map[string]string{"decision": "go", "reason": "dump verified"}),
		ok: 200, allow: []string{approver}},
	"POST /api/v1/runs/{id}/answer": {setup: waitFor(checkRunbook, runbook.WaitKindManual, "/answer", map[string]string{"kind": "manual", "choice": "confirmed"}),
		ok: 200, allow: runners},

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

	"GET /api/v1/apikeys":  {setup: static("/api/v1/apikeys", nil), ok: 200, allow: signedIn},
	"POST /api/v1/apikeys": {setup: static("/api/v1/apikeys", map[string]string{"name": "matrix"}), ok: 201, allow: signedIn},
	"DELETE /api/v1/apikeys/{id}": {setup: func(h *harness, _ *fixtures, role string, _ bool) (string, any) {
		u, err := h.st.GetUserByName(context.Background(), userOf(map[bool]string{true: viewer, false: role}[role == anonymous]))
		if err != nil {
			h.t.Fatal(err)
		}
		k := &store.APIKey{UserID: u.ID, Name: "doomed", KeyHash: h.unique("hash"), Hint: "obk_x"}
		if err := h.st.CreateAPIKey(context.Background(), k); err != nil {
			h.t.Fatal(err)
		}
		return "/api/v1/apikeys/" + itoa(k.ID), nil
	}, ok: 204, allow: signedIn},

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
	"GET /api/v1/audit":         {setup: static("/api/v1/audit", nil), ok: 200},
	"GET /api/v1/audit/verify":  {setup: static("/api/v1/audit/verify", nil), ok: 200},
	"POST /api/v1/retention":    {setup: static("/api/v1/retention", map[string]int{"keep": 1000}), ok: 200},
}

// waitFor starts a run (as runner, in staging) that waits for kind, for
// callers expected to pass; denied callers get the finished run.
func waitFor(rb, kind, suffix string, body any) func(*harness, *fixtures, string, bool) (string, any) {
	return func(h *harness, f *fixtures, _ string, allowed bool) (string, any) {
		if !allowed {
			return "/api/v1/runs/" + f.finishedRun + suffix, body
		}
		var params map[string]string
		if rb == backupRunbook {
			params = map[string]string{"TOKEN": "matrix-token"}
		}
		run := h.startRun(runner, rb, "staging", params)
		h.waitRun(run.ID, "waiting for "+kind, waitingFor(kind))
		return "/api/v1/runs/" + run.ID + suffix, body
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

func (c routeCase) expect(role string) int {
	if s, ok := c.status[role]; ok {
		return s
	}
	if role == admin || slices.Contains(c.allow, role) {
		return c.ok
	}
	if role == anonymous {
		return http.StatusUnauthorized
	}
	return http.StatusForbidden
}

// TestRoutePermissions walks every route the server registered (read from
// the router, not from a list here) with every role. A route added without
// an entry in routeCases fails the test.
func TestRoutePermissions(t *testing.T) {
	eachStore(t, func(t *testing.T, dsn string) {
		h := newHarness(t, dsn)
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
			for _, role := range roles {
				t.Run(key+"/"+role, func(t *testing.T) {
					want := c.expect(role)
					allowed := want == c.ok
					path, body := c.setup(h, f, role, allowed)
					cred := h.creds[role]
					if c.as != nil {
						cred = c.as(h, role)
					}
					if key == "POST /api/v1/hooks/{name}" {
						r := h.signedHook(cred, h.webhookTrigger(h.unique("hook"), searchRunbook), []byte(`{}`))
						if r.status != want {
							t.Errorf("signed webhook as %s: status %d, want %d\n%s", role, r.status, want, r.body)
						}
						return
					}
					r := h.doWith(cred, rt.Method, path, body)
					if r.status != want {
						t.Errorf("%s %s as %s: status %d, want %d\n%s", rt.Method, path, role, r.status, want, r.body)
					}
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
