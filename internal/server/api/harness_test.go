package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/secret"
	"github.com/opsbook/opsbook/internal/server"
	"github.com/opsbook/opsbook/internal/server/routes"
	"github.com/opsbook/opsbook/internal/store"
	"github.com/opsbook/opsbook/internal/store/pgtest"
)

func TestMain(m *testing.M) {
	// The crash test re-executes this binary as a server process.
	if args := os.Getenv("OPSBOOK_TEST_SERVE_ARGS"); args != "" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err := serveMain(ctx, strings.Split(args, "\x1f"))
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "serve:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	server.ObserveDecoding(observeDecoding)
	os.Exit(pgtest.Run(m))
}

// eachStore runs f once on a fresh SQLite file and once on a fresh
// PostgreSQL database: the server's suite must pass on both.
func eachStore(t *testing.T, f func(t *testing.T, dsn string)) {
	t.Run("sqlite", func(t *testing.T) { f(t, filepath.Join(t.TempDir(), "server.db")) })
	t.Run("postgres", func(t *testing.T) { f(t, pgtest.DSN(t)) })
}

// Roles of the permission matrix. Each is a user in a team of its own
// with the grants listed in newHarness; "apikey" is the runner acting
// through an API key instead of a session.
const (
	anonymous = "anonymous"
	viewer    = "viewer"
	runner    = "runner"
	approver  = "approver"
	editor    = "editor"
	varEditor = "variable-editor"
	admin     = "admin"
	apiKey    = "apikey"
	// scopedAdmin holds Admin on the payments project only: every
	// runbook permission there, and no administration (issue #12).
	scopedAdmin = "scoped-admin"
)

var roles = []string{anonymous, viewer, runner, approver, editor, varEditor, admin, apiKey, scopedAdmin}

// roleProjects restricts a role's grants to projects.
var roleProjects = map[string][]string{scopedAdmin: {"payments"}}

var roleGrants = map[string][]auth.Permission{
	viewer:    {auth.RunbookView},
	runner:    {auth.RunbookView, auth.RunbookRun},
	approver:  {auth.RunbookView, auth.RunbookApprove},
	editor:    {auth.RunbookView, auth.RunbookEdit, auth.RunbookRun},
	varEditor: {auth.RunbookView, auth.VariableEdit},
	admin:     {auth.Admin},
	// scopedAdmin's grant is restricted by roleProjects.
	scopedAdmin: {auth.Admin},
}

type harness struct {
	t     *testing.T
	srv   *server.Server
	st    *store.Store
	http  *httptest.Server
	dsn   string
	creds map[string]credential
	seq   atomic.Int64
}

type credential struct {
	cookie, csrf string // session
	key          string // API key
}

var testKey = bytes.Repeat([]byte{42}, secret.KeySize)

func newHarness(t *testing.T, dsn string) *harness {
	t.Helper()
	return newHarnessWith(t, dsn, nil)
}

// newHarnessWith is newHarness with configure applied to the server's
// Config last (another workspace, a fixed clock).
func newHarnessWith(t *testing.T, dsn string, configure func(*server.Config)) *harness {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := secret.NewKeyring("test", testKey)
	if err != nil {
		t.Fatal(err)
	}
	ws, err := filepath.Abs("testdata/workspace")
	if err != nil {
		t.Fatal(err)
	}
	cfg := server.Config{Store: st, Workspace: ws, Keys: keys, Workers: 16, ShutdownGrace: 5 * time.Second}
	if configure != nil {
		configure(&cfg)
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	routes.Register(srv)
	hs := httptest.NewServer(srv)
	h := &harness{t: t, srv: srv, st: st, http: hs, dsn: dsn, creds: map[string]credential{}}
	t.Cleanup(func() {
		hs.Close()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		st.Close()
	})
	for role, perms := range roleGrants {
		u := h.scopedUser(role, roleProjects[role], nil, perms...)
		tok, csrf := auth.NewToken(), auth.NewToken()
		now := time.Now()
		if err := st.CreateSession(ctx, store.Session{TokenHash: auth.HashToken(tok), UserID: u.ID, CSRF: csrf, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		h.creds[role] = credential{cookie: tok, csrf: csrf}
	}
	runnerUser, err := st.GetUserByName(ctx, runner)
	if err != nil {
		t.Fatal(err)
	}
	key := auth.NewAPIKey()
	if err := st.CreateAPIKey(ctx, &store.APIKey{UserID: runnerUser.ID, Name: "matrix", KeyHash: auth.HashToken(key), Hint: key[:8]}); err != nil {
		t.Fatal(err)
	}
	h.creds[apiKey] = credential{key: key}
	return h
}

// user creates a user in a team of the same name holding perms (unscoped).
func (h *harness) user(name string, perms ...auth.Permission) store.User {
	h.t.Helper()
	return h.scopedUser(name, nil, nil, perms...)
}

func (h *harness) scopedUser(name string, projects, envs []string, perms ...auth.Permission) store.User {
	h.t.Helper()
	ctx := context.Background()
	u := &store.User{Name: name}
	if err := h.st.CreateUser(ctx, u); err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.st.CreateTeam(ctx, name); err != nil {
		h.t.Fatal(err)
	}
	if err := h.st.AddTeamMember(ctx, name, u.ID); err != nil {
		h.t.Fatal(err)
	}
	for _, p := range perms {
		if err := h.st.CreateGrant(ctx, &auth.Grant{Team: name, Permission: p, Projects: projects, Environments: envs}); err != nil {
			h.t.Fatal(err)
		}
	}
	return *u
}

// login gives a user a session and returns its credential.
func (h *harness) login(u store.User) credential {
	tok, csrf := auth.NewToken(), auth.NewToken()
	now := time.Now()
	if err := h.st.CreateSession(context.Background(), store.Session{TokenHash: auth.HashToken(tok), UserID: u.ID, CSRF: csrf, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		h.t.Fatal(err)
	}
	return credential{cookie: tok, csrf: csrf}
}

// unique returns a name not used before in this harness.
func (h *harness) unique(prefix string) string { return fmt.Sprintf("%s%d", prefix, h.seq.Add(1)) }

type response struct {
	status int
	body   []byte
	header http.Header
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("response %d is not JSON: %v\n%s", r.status, err, r.body)
	}
}

// do sends a request as a role ("" or anonymous: no credentials).
func (h *harness) do(role, method, path string, body any) response {
	h.t.Helper()
	return h.doWith(h.creds[role], method, path, body)
}

func (h *harness) doWith(c credential, method, path string, body any) response {
	h.t.Helper()
	var rd io.Reader
	var reqBody []byte
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
		reqBody = []byte(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(buf)
		reqBody = buf
	}
	r := h.send(http.DefaultClient, c, method, path, rd, "application/json", "")
	if strings.HasPrefix(path, "/api/") {
		for _, p := range contracts().check(method, path, reqBody, r) {
			h.t.Error(p)
		}
	}
	return r
}

// browserClient leaves redirects to the caller: the matrix checks where a
// UI route sends the browser (the page asked for, or sign-in).
var browserClient = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// browse sends a request as a browser does to a UI route: it asks for
// HTML and posts forms, so errors come back as pages and redirects.
func (h *harness) browse(c credential, method, path string, form url.Values) response {
	h.t.Helper()
	var rd io.Reader
	if form != nil {
		rd = strings.NewReader(form.Encode())
	}
	return h.send(browserClient, c, method, path, rd, "application/x-www-form-urlencoded", "text/html")
}

// streamStatus is browse for an event stream that never ends: the status
// and headers of a GET as a browser's EventSource sends it, the body read
// only when it is not a stream.
func (h *harness) streamStatus(c credential, path string) response {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.http.URL+path, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream, text/html")
	switch {
	case c.key != "":
		req.Header.Set("Authorization", "Bearer "+c.key)
	case c.cookie != "":
		req.AddCookie(&http.Cookie{Name: server.SessionCookie, Value: c.cookie})
	}
	resp, err := browserClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	r := response{status: resp.StatusCode, header: resp.Header}
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		if r.body, err = io.ReadAll(resp.Body); err != nil {
			h.t.Fatal(err)
		}
	}
	return r
}

// send makes one request with c's credentials; accept, when not empty, is
// the Accept header.
func (h *harness) send(client *http.Client, c credential, method, path string, rd io.Reader, contentType, accept string) response {
	h.t.Helper()
	req, err := http.NewRequest(method, h.http.URL+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", contentType)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	switch {
	case c.key != "":
		req.Header.Set("Authorization", "Bearer "+c.key)
	case c.cookie != "":
		req.AddCookie(&http.Cookie{Name: server.SessionCookie, Value: c.cookie})
		req.Header.Set(auth.CSRFHeader, c.csrf)
		req.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	resp, err := client.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return response{status: resp.StatusCode, body: b, header: resp.Header}
}

// must sends a request as a role and fails the test unless the status is want.
func (h *harness) must(want int, role, method, path string, body any) response {
	h.t.Helper()
	r := h.do(role, method, path, body)
	if r.status != want {
		h.t.Fatalf("%s %s as %s: status %d, want %d\n%s", method, path, role, r.status, want, r.body)
	}
	return r
}

const (
	backupRunbook = "ops/runbooks/payments-backup.md"
	checkRunbook  = "ops/runbooks/payments-check.md"
	searchRunbook = "ops/runbooks/search-reindex.md"
)

// publishAll publishes every runbook of the test workspace.
func (h *harness) publishAll() {
	for _, rb := range []string{backupRunbook, checkRunbook, searchRunbook} {
		h.must(http.StatusCreated, admin, "POST", "/api/v1/snapshots", map[string]string{"runbook": rb})
	}
}

// startRun starts a run as role and returns it.
func (h *harness) startRun(role, rb, env string, params map[string]string) runbook.Run {
	h.t.Helper()
	var run runbook.Run
	h.must(http.StatusCreated, role, "POST", "/api/v1/runs", map[string]any{"runbook": rb, "environment": env, "params": params}).json(h.t, &run)
	return run
}

type runDetail struct {
	runbook.Run
	State *runbook.RunState `json:"state"`
}

// waitRun polls a run until cond holds (or fails the test after 20 s).
func (h *harness) waitRun(id string, what string, cond func(runDetail) bool) runDetail {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var d runDetail
		h.must(http.StatusOK, admin, "GET", "/api/v1/runs/"+id, nil).json(h.t, &d)
		if cond(d) {
			return d
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("run %s: still not %s; status %s, waiting %+v", id, what, d.Status, d.State.Waiting)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitingFor(kind string) func(runDetail) bool {
	return func(d runDetail) bool {
		return d.State != nil && d.State.Waiting != nil && d.State.Waiting.Kind == kind
	}
}

func finished(d runDetail) bool { return d.Status.Finished() }

// serveMain is what `opsbook serve --addr A --db D --data DIR --workspace W`
// does (internal/cli/serve.go), without the CLI package: a child process
// for the crash test. args alternate flag names and values.
func serveMain(ctx context.Context, args []string) error {
	flags := map[string]string{}
	for i := 0; i+1 < len(args); i += 2 {
		flags[args[i]] = args[i+1]
	}
	keys, _, err := secret.LoadKeyring(flags["--data"], os.Getenv)
	if err != nil {
		return err
	}
	st, err := store.Open(ctx, flags["--db"])
	if err != nil {
		return err
	}
	defer st.Close()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	srv, err := server.New(server.Config{Store: st, Workspace: flags["--workspace"], Keys: keys, Logger: log, ShutdownGrace: time.Second})
	if err != nil {
		return err
	}
	routes.Register(srv)
	if _, _, err := srv.Bootstrap(ctx, os.Getenv); err != nil {
		return err
	}
	return srv.ListenAndServe(ctx, flags["--addr"], func(a net.Addr) { fmt.Printf("opsbook serving on %s\n", a) })
}
