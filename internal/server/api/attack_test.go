package api_test

// Attack tests: each is a request (or a sequence) an attacker made against
// the server and that used to get through (issue #12). Every test names the
// class of fault; each fails when the defence it covers is removed.

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/server"
	"github.com/opsbook/opsbook/internal/server/routes"
	"github.com/opsbook/opsbook/internal/store"
)

// attackWorkspace is a workspace with a bash step in dev, for attacks
// that reach a command's environment.
func attackWorkspace(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"opsbook.yaml": "name: attack\nlang: en\nprojects:\n  - name: alpha\n    runbooks: [ops/runbooks/alpha-*.md]\n" +
			"  - name: beta\n    runbooks: [ops/runbooks/beta-*.md]\n" +
			"environments:\n  - name: dev\n  - name: production\n    protected: true\n    reviewers: 0\n    rehearsal: false\n",
		"ops/runbooks/alpha-hello.md": "---\nkind: runbook\ntitle: Hello\n---\n\n# Hello\n\n## Steps\n\n### Greet\n\n```bash {id=greet}\necho hello\n```\n",
		"ops/runbooks/alpha-gate.md":  "---\nkind: runbook\ntitle: Gate\n---\n\n# Gate\n\n## Steps\n\n### Decide\n\n```gate {id=go approvers=2}\nGo when ready.\n```\n\n### After\n\n```bash {id=after}\necho after\n```\n",
		"ops/runbooks/alpha-count.md": "---\nkind: runbook\ntitle: Count\nparams:\n  COUNT: {type: int, required: true}\n---\n\n# Count\n\n## Steps\n\n### Count\n\n```bash {id=count}\necho $COUNT\n```\n",
		"ops/runbooks/beta-hello.md":  "---\nkind: runbook\ntitle: Beta hello\n---\n\n# Beta hello\n\n## Steps\n\n### Greet\n\n```bash {id=greet}\necho beta\n```\n",
	}
	for name, text := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const (
	alphaCount = "ops/runbooks/alpha-count.md"
	alphaGate  = "ops/runbooks/alpha-gate.md"
	alphaHello = "ops/runbooks/alpha-hello.md"
	betaHello  = "ops/runbooks/beta-hello.md"
)

func newAttackHarness(t *testing.T, dsn string) *harness {
	t.Helper()
	ws := attackWorkspace(t)
	h := newHarnessWith(t, dsn, func(c *server.Config) { c.Workspace = ws })
	for _, rb := range []string{alphaHello, alphaGate, alphaCount, betaHello} {
		h.must(http.StatusCreated, admin, "POST", "/api/v1/snapshots", map[string]string{"runbook": rb})
	}
	return h
}

// TestAttackVariableNameRunsCode: a user whose only write grant is
// VariableEdit set BASH_ENV to a command substitution, and the next bash
// step ran it as the server's user (fault: a variable name that a shell
// obeys). Every reserved or malformed name is refused by the API and the
// variables page, and a name that got into the database some other way
// stops the run before any command starts: no file appears.
func TestAttackVariableNameRunsCode(t *testing.T) {
	eachStore(t, func(t *testing.T, dsn string) {
		h := newAttackHarness(t, dsn)
		marker := filepath.Join(t.TempDir(), "pwned")
		payload := `$(touch ` + marker + `)`
		for _, name := range runbook.HostileEnvNames() {
			if name == "" {
				continue // not a path segment
			}
			r := h.do(varEditor, "PUT", "/api/v1/variables/"+url.PathEscape(name)+"?environment=dev", map[string]any{"value": payload})
			if r.status != http.StatusBadRequest {
				t.Errorf("API: variable %q: status %d, want 400\n%s", name, r.status, r.body)
			}
			r = h.browse(h.creds[varEditor], "POST", "/admin/variables", url.Values{"name": {name}, "environment": {"dev"}, "value": {payload}, "csrf_token": {h.creds[varEditor].csrf}})
			if r.status != http.StatusBadRequest {
				t.Errorf("variables page: variable %q: status %d, want 400", name, r.status)
			}
		}
		vs, err := h.st.ListVariables(context.Background(), "", true)
		if err != nil {
			t.Fatal(err)
		}
		if len(vs) != 0 {
			t.Fatalf("refused names were stored anyway: %+v", vs)
		}
		h.must(http.StatusOK, varEditor, "PUT", "/api/v1/variables/DB_HOST?environment=dev", map[string]any{"value": "db1"})

		// A row written before the rule (or by hand): the run is refused.
		if err := h.st.SetVariable(context.Background(), store.Variable{Environment: "dev", Name: "BASH_ENV", Value: payload}); err != nil {
			t.Fatal(err)
		}
		r := h.do(runner, "POST", "/api/v1/runs", map[string]any{"runbook": alphaHello, "environment": "dev"})
		if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "BASH_ENV is reserved") {
			t.Errorf("run with a stored BASH_ENV: status %d, want 400 naming it\n%s", r.status, r.body)
		}
		if r.status == http.StatusCreated {
			var run runbook.Run
			r.json(t, &run)
			h.waitRun(run.ID, "finished", finished)
		}
		if _, err := os.Stat(marker); err == nil {
			t.Fatalf("BASH_ENV ran the attacker's command: %s exists", marker)
		}
	})
}

// TestAttackOpenRedirect: after sign-in, next= sent the browser off-site
// when it held a tab, a backslash or an encoded slash that a browser
// reads as "//" (fault: open redirect on /login and /lang).
func TestAttackOpenRedirect(t *testing.T) {
	h := newHarness(t, filepath.Join(t.TempDir(), "server.db"))
	pw := "a long enough password"
	u := h.user(h.unique("walker"), "RunbookView")
	h.must(http.StatusOK, admin, "PATCH", "/api/v1/users/"+u.Name, map[string]any{"password": pw})
	hostile := []string{"/\t/evil.example", "/%09/evil.example", "//evil.example", "/\\evil.example", "/%5Cevil.example",
		"/%2F/evil.example", "https://evil.example", "/\n/evil.example", "/.//evil.example", "/x/..//evil.example", "javascript:alert(1)", " //evil.example"}
	for _, next := range hostile {
		for _, c := range []struct {
			method, path string
			form         url.Values
		}{
			{"POST", "/login", url.Values{"name": {u.Name}, "password": {pw}, "next": {next}}},
			{"POST", "/lang", url.Values{"lang": {"en"}, "next": {next}}},
			{"GET", "/login?next=" + url.QueryEscape(next), nil},
		} {
			cred := credential{}
			if c.method == "GET" {
				cred = h.creds[viewer]
			}
			r := h.browse(cred, c.method, c.path, c.form)
			loc := r.header.Get("Location")
			if r.status != http.StatusSeeOther {
				t.Errorf("%s %s next=%q: status %d, want 303", c.method, c.path, next, r.status)
				continue
			}
			target, err := url.Parse(h.http.URL + "/")
			if err != nil {
				t.Fatal(err)
			}
			got, err := target.Parse(loc)
			if err != nil || got.Host != target.Host || strings.ContainsAny(loc, "\t\n\\") || strings.HasPrefix(loc, "//") {
				t.Errorf("%s %s next=%q: redirected to %q, off this site", c.method, c.path, next, loc)
			}
		}
	}
	// A path on this site is kept, query and all.
	r := h.browse(credential{}, "POST", "/lang", url.Values{"lang": {"en"}, "next": {"/runs/r-1?tab=log"}})
	if loc := r.header.Get("Location"); loc != "/runs/r-1?tab=log" {
		t.Errorf("same-site next became %q", loc)
	}
}

// TestAttackLoginCSRF: a page on another site posted the attacker's name
// and password to /api/v1/login as text/plain (no preflight), and the
// victim's browser got the attacker's session (fault: login CSRF).
func TestAttackLoginCSRF(t *testing.T) {
	h := newHarness(t, filepath.Join(t.TempDir(), "server.db"))
	pw := "a long enough password"
	u := h.user(h.unique("mallory"), "RunbookView")
	h.must(http.StatusOK, admin, "PATCH", "/api/v1/users/"+u.Name, map[string]any{"password": pw})
	body := `{"name":"` + u.Name + `","password":"` + pw + `"}`
	for _, c := range []struct {
		name, contentType string
		header            map[string]string
		want              int
	}{
		{"cross-site text/plain", "text/plain", map[string]string{"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"cross-site JSON", "application/json", map[string]string{"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"same-site text/plain", "text/plain", map[string]string{"Sec-Fetch-Site": "same-origin"}, http.StatusUnsupportedMediaType},
		{"form", "application/x-www-form-urlencoded", nil, http.StatusUnsupportedMediaType},
		{"CLI JSON", "application/json", nil, http.StatusOK},
	} {
		req, _ := http.NewRequest("POST", h.http.URL+"/api/v1/login", strings.NewReader(body))
		req.Header.Set("Content-Type", c.contentType)
		for k, v := range c.header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s: status %d, want %d", c.name, resp.StatusCode, c.want)
		}
		if c.want != http.StatusOK && len(resp.Cookies()) > 0 {
			t.Errorf("%s: a session cookie was set", c.name)
		}
	}
}

// TestAttackAmbiguousRunPrefix: GET /api/v1/runs/<prefix> answered "ambiguous,
// it matches A, B" naming another project's run (fault: id disclosure
// across projects). The caller sees only runs they may view: a prefix
// resolves to their one run, and an ambiguity lists only theirs.
func TestAttackAmbiguousRunPrefix(t *testing.T) {
	eachStore(t, func(t *testing.T, dsn string) {
		h := newAttackHarness(t, dsn)
		ctx := context.Background()
		alphaViewer := h.login(h.scopedUser(h.unique("alpha-viewer"), []string{"alpha"}, nil, "RunbookView"))
		// Two runs whose ids share a prefix, one per project.
		for _, r := range []*runbook.Run{
			{ID: "r-ZZPREFIXA1", Runbook: alphaHello, Environment: "dev", Status: runbook.RunSucceeded, CreatedBy: "admin"},
			{ID: "r-ZZPREFIXB1", Runbook: betaHello, Environment: "dev", Status: runbook.RunSucceeded, CreatedBy: "admin"},
		} {
			if err := h.st.CreateRun(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		r := h.doWith(alphaViewer, "GET", "/api/v1/runs/r-ZZPREFIX", nil)
		if strings.Contains(string(r.body), "r-ZZPREFIXB1") {
			t.Fatalf("another project's run id leaked: %d %s", r.status, r.body)
		}
		var got runbook.Run
		if r.status != http.StatusOK {
			t.Fatalf("prefix of the caller's one visible run: status %d\n%s", r.status, r.body)
		}
		r.json(t, &got)
		if got.ID != "r-ZZPREFIXA1" {
			t.Errorf("resolved to %s", got.ID)
		}
		// Someone who sees both still gets the ambiguity.
		r = h.do(viewer, "GET", "/api/v1/runs/r-ZZPREFIX", nil)
		if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "r-ZZPREFIXB1") {
			t.Errorf("viewer of both: status %d, want 400 listing both\n%s", r.status, r.body)
		}
		// The UI resolves the same way.
		r = h.browse(alphaViewer, "GET", "/runs/r-ZZPREFIX", nil)
		if r.status != http.StatusOK || strings.Contains(string(r.body), "r-ZZPREFIXB1") {
			t.Errorf("UI: ambiguous prefix: status %d, want the caller's run and no other id\n%s", r.status, r.body)
		}
	})
}

// TestAttackScopedAdmin: a grant {"permission":"Admin","projects":["alpha"]}
// passed every Admin-only route — listed users, API keys and the audit
// log, minted an API key for admin, granted its own team global Admin and
// edited admin (fault: a scope ignored on administration). Scoped Admin is
// every runbook permission within its projects, and no administration.
func TestAttackScopedAdmin(t *testing.T) {
	eachStore(t, func(t *testing.T, dsn string) {
		h := newAttackHarness(t, dsn)
		u := h.scopedUser(h.unique("alpha-admin"), []string{"alpha"}, nil, "Admin")
		c := h.login(u)
		for _, a := range []struct {
			method, path string
			body         any
		}{
			{"GET", "/api/v1/users", nil},
			{"GET", "/api/v1/apikeys?all=true", nil},
			{"GET", "/api/v1/audit", nil},
			{"GET", "/api/v1/audit/verify", nil},
			{"POST", "/api/v1/apikeys", map[string]string{"name": "backdoor", "user": "admin"}},
			{"POST", "/api/v1/grants", map[string]any{"team": u.Name, "permission": "Admin"}},
			{"POST", "/api/v1/grants", map[string]any{"team": u.Name, "permission": "RunbookRun", "projects": []string{"alpha"}}},
			{"PATCH", "/api/v1/users/admin", map[string]any{"password": "taken over by alpha admin"}},
			{"PUT", "/api/v1/teams/" + u.Name + "/members/viewer", nil},
			{"GET", "/api/v1/triggers", nil},
			{"POST", "/api/v1/retention", map[string]int{"keep": 1}},
			// Variables reach every project's runs in their environment.
			{"PUT", "/api/v1/variables/REGION?environment=dev", map[string]any{"value": "x"}},
			// Another project's runbook.
			{"POST", "/api/v1/runs", map[string]any{"runbook": betaHello, "environment": "dev"}},
		} {
			if r := h.doWith(c, a.method, a.path, a.body); r.status != http.StatusForbidden {
				t.Errorf("%s %s as alpha-scoped Admin: status %d, want 403\n%s", a.method, a.path, r.status, r.body)
			}
		}
		for _, page := range []string{"/admin/users", "/admin/teams", "/audit", "/admin/triggers"} {
			if r := h.browse(c, "GET", page, nil); r.status != http.StatusForbidden {
				t.Errorf("GET %s as alpha-scoped Admin: status %d, want 403", page, r.status)
			}
		}
		var sess struct{ Admin bool }
		h.doWith(c, "GET", "/api/v1/session", nil).json(t, &sess)
		if sess.Admin {
			t.Error("the session reports a scoped Admin as administrator")
		}
		// Within alpha it has every runbook permission.
		if r := h.doWith(c, "POST", "/api/v1/runs", map[string]any{"runbook": alphaHello, "environment": "dev"}); r.status != http.StatusCreated {
			t.Errorf("run in its own project: status %d\n%s", r.status, r.body)
		}
		if r := h.doWith(c, "POST", "/api/v1/snapshots", map[string]string{"runbook": alphaHello}); r.status != http.StatusCreated && r.status != http.StatusOK {
			t.Errorf("publish in its own project: status %d\n%s", r.status, r.body)
		}
	})
}

// TestAttackParallelApprovals: 20 parallel approvals by one user wrote up
// to 6 gate.decided events for them (fault: a race between reading the
// gate's state and appending the decision). One is recorded; the gate
// still waits for a second person.
func TestAttackParallelApprovals(t *testing.T) {
	eachStore(t, func(t *testing.T, dsn string) {
		h := newAttackHarness(t, dsn)
		run := h.startRun(runner, alphaGate, "dev", nil)
		h.waitRun(run.ID, "waiting for a gate", waitingFor(runbook.WaitKindGate))
		var wg sync.WaitGroup
		statuses := make([]int, 20)
		for i := range statuses {
			wg.Go(func() {
				statuses[i] = h.do(approver, "POST", "/api/v1/runs/"+run.ID+"/gate", map[string]string{"decision": "go", "reason": "looks fine"}).status
			})
		}
		wg.Wait()
		ok := 0
		for _, st := range statuses {
			switch st {
			case http.StatusOK:
				ok++
			case http.StatusConflict, http.StatusBadRequest:
			default:
				t.Errorf("parallel approval: status %d", st)
			}
		}
		n := 0
		for ev, err := range h.st.AllEvents(context.Background(), run.ID, 0) {
			if err != nil {
				t.Fatal(err)
			}
			if ev.Type == runbook.EventGateDecided && ev.Actor == approver {
				n++
			}
		}
		if ok != 1 || n != 1 {
			t.Errorf("%d approvals accepted, %d gate.decided events by %s; want 1 and 1", ok, n, approver)
		}
		d := h.waitRun(run.ID, "waiting", waitingFor(runbook.WaitKindGate))
		if len(d.State.Waiting.Approvals) != 1 {
			t.Errorf("the gate counts %d approvals", len(d.State.Waiting.Approvals))
		}
		h.cancelActive()
	})
}

// TestAttackWebhookReplay: a captured webhook request was accepted again
// with its signature's hex upper-cased (wholly or one letter), and the
// identical request again after a server restart — each started a new
// run (fault: replay through a non-canonical signature and an in-memory
// guard). Every replay is refused, on a restarted server and on another
// node sharing the database.
func TestAttackWebhookReplay(t *testing.T) {
	eachStore(t, func(t *testing.T, dsn string) {
		h := newHarness(t, dsn)
		h.publishAll()
		name := h.webhookTrigger(h.unique("hook"), searchRunbook)
		body := []byte(`{}`)
		sig := server.SignWebhook(webhookSecret, time.Now(), body)
		if r := h.hookWith(credential{}, name, body, sig); r.status != http.StatusAccepted {
			t.Fatalf("first delivery: %d %s", r.status, r.body)
		}
		ts, mac, _ := strings.Cut(sig, ",v1=")
		i := strings.IndexAny(mac, "abcdef")
		for _, replay := range []string{
			sig,
			ts + ",v1=" + strings.ToUpper(mac),
			ts + ",v1=" + mac[:i] + strings.ToUpper(mac[i:i+1]) + mac[i+1:],
			"v1=" + mac + "," + ts,
		} {
			if r := h.hookWith(credential{}, name, body, replay); r.status != http.StatusUnauthorized {
				t.Errorf("replay %q: status %d, want 401\n%s", replay, r.status, r.body)
			}
		}
		// A second server process on the same database: a restart, or another node.
		st2, err := store.Open(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer st2.Close()
		srv2, err := server.New(server.Config{Store: st2, Workspace: h.srv.Catalog().Workspace().Dir, Keys: h.srv.Keys(), ShutdownGrace: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		routes.Register(srv2)
		hs2 := httptest.NewServer(srv2)
		defer hs2.Close()
		defer srv2.Shutdown(context.Background())
		node2 := &harness{t: t, srv: srv2, st: st2, http: hs2}
		if r := node2.hookWith(credential{}, name, body, sig); r.status != http.StatusUnauthorized {
			t.Errorf("replay on a restarted server: status %d, want 401\n%s", r.status, r.body)
		}
		runs, err := h.st.ListRuns(context.Background(), store.RunFilter{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		if len(runs) != 1 {
			t.Errorf("%d runs started, want 1", len(runs))
		}
		// A fresh signature of the same body is a new delivery.
		time.Sleep(1100 * time.Millisecond)
		if r := node2.signedHook(credential{}, name, body); r.status != http.StatusAccepted {
			t.Errorf("fresh delivery on node 2: %d %s", r.status, r.body)
		}
		h.cancelActive()
	})
}

// TestAttackPasswordGuessing: 40 wrong passwords in 2.5 s, then the right
// one, signed in (fault: no throttling). After a few failures attempts on
// the account — the right password too — are refused with 429 and
// audited, through the API and the sign-in form, and an attacker cycling
// through names from one address is slowed as well.
func TestAttackPasswordGuessing(t *testing.T) {
	h := newHarness(t, filepath.Join(t.TempDir(), "server.db"))
	pw := "a long enough password"
	u := h.user(h.unique("target"), "RunbookView")
	h.must(http.StatusOK, admin, "PATCH", "/api/v1/users/"+u.Name, map[string]any{"password": pw})
	login := func(name, password string) int {
		return h.doWith(credential{}, "POST", "/api/v1/login", map[string]string{"name": name, "password": password}).status
	}
	throttled := 0
	for range 40 {
		switch st := login(u.Name, "guess"); st {
		case http.StatusUnauthorized:
		case http.StatusTooManyRequests:
			throttled++
		default:
			t.Fatalf("wrong password: status %d", st)
		}
	}
	if throttled == 0 {
		t.Error("40 wrong passwords in a row were all checked")
	}
	if st := login(u.Name, pw); st != http.StatusTooManyRequests {
		t.Errorf("the right password straight after 40 guesses: status %d, want 429", st)
	}
	r := h.browse(credential{}, "POST", "/login", url.Values{"name": {u.Name}, "password": {pw}})
	if r.status != http.StatusTooManyRequests || len(r.header.Values("Set-Cookie")) > 0 && strings.Contains(r.header.Get("Set-Cookie"), server.SessionCookie+"=") {
		t.Errorf("sign-in form after 40 guesses: status %d", r.status)
	}
	entries, err := h.st.ListAudit(context.Background(), store.AuditFilter{Action: "login.throttled", Limit: 100})
	if err != nil || len(entries) == 0 {
		t.Errorf("throttled attempts not audited: %v", err)
	}
	// Spraying one password over many names from one address.
	sprayed := 0
	for i := range 40 {
		if login(fmt.Sprintf("nobody%d", i), "guess") == http.StatusTooManyRequests {
			sprayed++
		}
	}
	if sprayed == 0 {
		t.Error("40 names from one address were all checked")
	}
}

// TestAttackStreamAfterRevocation: an event stream opened before its user
// was disabled (or lost the grant) kept delivering the run's events
// (fault: authorisation checked once, at connect). The stream re-checks
// its caller and ends.
func TestAttackStreamAfterRevocation(t *testing.T) {
	eachStore(t, func(t *testing.T, dsn string) {
		h := newAttackHarness(t, dsn)
		run := h.startRun(runner, alphaGate, "dev", nil)
		h.waitRun(run.ID, "waiting for a gate", waitingFor(runbook.WaitKindGate))
		for _, revoke := range []string{"disable", "grant"} {
			t.Run(revoke, func(t *testing.T) {
				u := h.scopedUser(h.unique("watcher"), []string{"alpha"}, nil, "RunbookView")
				c := h.login(u)
				req, _ := http.NewRequest("GET", h.http.URL+"/api/v1/runs/"+run.ID+"/events/stream", nil)
				req.AddCookie(&http.Cookie{Name: server.SessionCookie, Value: c.cookie})
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				lines := make(chan string, 1000)
				go func() {
					defer close(lines)
					buf := make([]byte, 64<<10)
					for {
						n, err := resp.Body.Read(buf)
						if n > 0 {
							lines <- string(buf[:n])
						}
						if err != nil {
							return
						}
					}
				}()
				var got strings.Builder
				read := func(until string, d time.Duration) bool {
					deadline := time.After(d)
					for !strings.Contains(got.String(), until) {
						select {
						case l, ok := <-lines:
							if !ok {
								return strings.Contains(got.String(), until)
							}
							got.WriteString(l)
						case <-deadline:
							return false
						}
					}
					return true
				}
				if !read("gate.waiting", 5*time.Second) {
					t.Fatalf("stream never showed the gate:\n%s", got.String())
				}
				switch revoke {
				case "disable":
					h.must(http.StatusOK, admin, "PATCH", "/api/v1/users/"+u.Name, map[string]any{"disabled": true})
				case "grant":
					p, err := h.st.Principal(context.Background(), u.ID, "session")
					if err != nil {
						t.Fatal(err)
					}
					for _, g := range p.Grants {
						h.must(http.StatusNoContent, admin, "DELETE", fmt.Sprintf("/api/v1/grants/%d", g.ID), nil)
					}
				}
				time.Sleep(1500 * time.Millisecond)
				h.must(http.StatusOK, approver, "POST", "/api/v1/runs/"+run.ID+"/gate", map[string]string{"decision": "no-go", "reason": "stop " + revoke})
				if !read("access revoked", 5*time.Second) {
					t.Errorf("the stream did not end after the caller lost access:\n%s", got.String())
				}
				if strings.Contains(got.String(), "stop "+revoke) {
					t.Errorf("a decision made after the revocation reached the revoked caller")
				}
			})
			if revoke == "disable" {
				// The run goes on (no-go ends it); start another for the next case.
				run = h.startRun(runner, alphaGate, "dev", nil)
				h.waitRun(run.ID, "waiting for a gate", waitingFor(runbook.WaitKindGate))
			}
		}
		h.cancelActive()
	})
}
