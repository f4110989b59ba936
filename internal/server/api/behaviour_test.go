package api_test

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"

	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/store"
)

// TestScopedPermissions: grants restricted to a project and an
// environment apply there only, and lists show only what may be viewed.
func TestScopedPermissions(t *testing.T) {
	eachStore(t, func(t *testing.T, dsn string) {
		h := newHarness(t, dsn)
		h.publishAll()
		scoped := h.login(h.scopedUser("pay-staging", []string{"payments"}, []string{"staging"}, auth.RunbookView, auth.RunbookRun))
		tests := []struct {
			name, method, path string
			body               any
			want               int
		}{
			{"run in own project and env", "POST", "/api/v1/runs", map[string]any{"runbook": checkRunbook, "environment": "staging"}, 201},
			{"run in production", "POST", "/api/v1/runs", map[string]any{"runbook": checkRunbook, "environment": "production"}, 403},
			{"run other project", "POST", "/api/v1/runs", map[string]any{"runbook": searchRunbook, "environment": "staging"}, 403},
			{"view other project's runbook", "GET", "/api/v1/runbooks/" + searchRunbook, nil, 403},
			{"view own runbook", "GET", "/api/v1/runbooks/" + checkRunbook, nil, 200},
			{"unpublished content needs RunbookEdit", "POST", "/api/v1/runs", map[string]any{"runbook": checkRunbook, "environment": "staging", "snapshot": "current"}, 403},
			{"set a variable", "PUT", "/api/v1/variables/X?environment=staging", map[string]any{"value": "1"}, 403},
			{"missing run after permission", "GET", "/api/v1/runs/r-NOSUCHRUN0000", nil, 404},
			{"bad params are 400", "POST", "/api/v1/runs", map[string]any{"runbook": checkRunbook, "environment": "staging", "params": map[string]string{"NOPE": "1"}}, 400},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := h.doWith(scoped, tt.method, tt.path, tt.body)
				if r.status != tt.want {
					t.Fatalf("status %d, want %d: %s", r.status, tt.want, r.body)
				}
				var e struct {
					Error struct{ Code, Message string } `json:"error"`
				}
				if r.status >= 400 && (json.Unmarshal(r.body, &e) != nil || e.Error.Code == "" || e.Error.Message == "") {
					t.Fatalf("error body is not {\"error\":{\"code\",\"message\"}}: %s", r.body)
				}
			})
		}
		// Lists: the scoped user sees payments runbooks and staging runs only.
		h.startRun(admin, searchRunbook, "staging", nil)
		h.startRun(admin, checkRunbook, "dev", nil)
		var rbs struct{ Items []struct{ Path string } }
		h.doWith(scoped, "GET", "/api/v1/runbooks", nil).json(t, &rbs)
		for _, rb := range rbs.Items {
			if !strings.Contains(rb.Path, "payments-") {
				t.Errorf("scoped user sees runbook %s", rb.Path)
			}
		}
		var runs struct{ Items []runbook.Run }
		h.doWith(scoped, "GET", "/api/v1/runs", nil).json(t, &runs)
		if len(runs.Items) != 1 {
			t.Errorf("scoped user sees %d runs, want only their own staging payments run", len(runs.Items))
		}
		for _, r := range runs.Items {
			if r.Environment != "staging" || !strings.Contains(r.Runbook, "payments-") {
				t.Errorf("scoped user sees run %s of %s in %s", r.ID, r.Runbook, r.Environment)
			}
		}
		h.cancelActive()
	})
}

// TestCSRFAndCredentials: cookie sessions need the CSRF token and same
// origin on unsafe requests; bad API keys are refused, not anonymous.
func TestCSRFAndCredentials(t *testing.T) {
	h := newHarness(t, filepath.Join(t.TempDir(), "server.db"))
	c := h.creds[admin]
	noToken := credential{cookie: c.cookie}
	if r := h.doWith(noToken, "POST", "/api/v1/teams", map[string]string{"name": "x"}); r.status != 403 || !bytes.Contains(r.body, []byte(`"csrf"`)) {
		t.Fatalf("POST without CSRF token: %d %s", r.status, r.body)
	}
	if r := h.doWith(noToken, "GET", "/api/v1/teams", nil); r.status != 200 {
		t.Fatalf("GET needs no CSRF token: %d", r.status)
	}
	if r := h.doWith(credential{key: "obk_" + strings.Repeat("x", 43)}, "GET", "/api/v1/runs", nil); r.status != 401 {
		t.Fatalf("unknown API key: %d", r.status)
	}
	// Real login sets an HttpOnly SameSite=Lax cookie and returns the CSRF token.
	u := h.user("carol", auth.RunbookView)
	hash, _ := auth.HashPassword("carol's long password")
	u.PasswordHash = hash
	if err := h.st.UpdateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	if r := h.do(anonymous, "POST", "/api/v1/login", map[string]string{"name": "carol", "password": "wrong"}); r.status != 401 {
		t.Fatalf("wrong password: %d", r.status)
	}
	r := h.must(200, anonymous, "POST", "/api/v1/login", map[string]string{"name": "carol", "password": "carol's long password"})
	setCookie := r.header.Get("Set-Cookie")
	for _, want := range []string{server_SessionCookie + "=", "HttpOnly", "SameSite=Lax"} {
		if !strings.Contains(setCookie, want) {
			t.Errorf("Set-Cookie %q lacks %s", setCookie, want)
		}
	}
	var login struct {
		CSRF string `json:"csrf_token"`
	}
	r.json(t, &login)
	tok := strings.TrimPrefix(strings.SplitN(setCookie, ";", 2)[0], server_SessionCookie+"=")
	sess := credential{cookie: tok, csrf: login.CSRF}
	h.mustWith(200, sess, "GET", "/api/v1/session")
	h.mustWith(204, sess, "POST", "/api/v1/logout")
	if r := h.doWith(sess, "GET", "/api/v1/session", nil); r.status != 401 {
		t.Fatalf("session after logout: %d", r.status)
	}
}

const server_SessionCookie = "opsbook_session"

func (h *harness) mustWith(want int, c credential, method, path string) response {
	h.t.Helper()
	r := h.doWith(c, method, path, nil)
	if r.status != want {
		h.t.Fatalf("%s %s: %d, want %d: %s", method, path, r.status, want, r.body)
	}
	return r
}

// TestGates: approvals need distinct approvers; in a protected
// environment whoever started the run may not approve it.
func TestGates(t *testing.T) {
	eachStore(t, func(t *testing.T, dsn string) {
		h := newHarness(t, dsn)
		h.publishAll()
		// The runner also approves: self-approval in a protected environment is refused.
		both := h.user("both", auth.RunbookView, auth.RunbookRun, auth.RunbookApprove)
		bothCred := h.login(both)
		var run runbook.Run
		r := h.doWith(bothCred, "POST", "/api/v1/runs", map[string]any{"runbook": backupRunbook, "environment": "production", "params": map[string]string{"TOKEN": "t0ken-value"}})
		if r.status != 201 {
			t.Fatalf("start: %d %s", r.status, r.body)
		}
		r.json(t, &run)
		h.waitRun(run.ID, "at the gate", waitingFor(runbook.WaitKindGate))
		if r := h.doWith(bothCred, "POST", "/api/v1/runs/"+run.ID+"/gate", map[string]string{"decision": "go", "reason": "mine"}); r.status != 403 {
			t.Fatalf("self-approval in production: %d %s", r.status, r.body)
		}
		if r := h.do(approver, "POST", "/api/v1/runs/"+run.ID+"/gate", map[string]string{"decision": "go"}); r.status != 409 {
			t.Fatalf("decision without reason: %d %s", r.status, r.body)
		}
		h.must(200, approver, "POST", "/api/v1/runs/"+run.ID+"/gate", map[string]string{"decision": "go", "reason": "dump verified"})
		d := h.waitRun(run.ID, "finished", finished)
		if d.Status != runbook.RunSucceeded {
			t.Fatalf("run ended %s", d.Status)
		}
		var audit struct {
			Items []struct{ Actor, Action, Remote string }
		}
		h.must(200, admin, "GET", "/api/v1/audit?action=run.", nil).json(t, &audit)
		var actions []string
		for _, e := range audit.Items {
			actions = append(actions, e.Actor+":"+e.Action)
			if e.Remote == "" {
				t.Errorf("audit entry %s has no remote address", e.Action)
			}
		}
		got := strings.Join(actions, " ")
		if !strings.Contains(got, "approver:run.gate") || !strings.Contains(got, "both:run.start") {
			t.Fatalf("audit log lacks the start and the decision: %s", got)
		}
	})
}

// TestSecretsAtRest sets a sensitive variable and runs with a secret
// parameter, then reads the raw database (SQLite files; every PostgreSQL
// table) for either plaintext.
func TestSecretsAtRest(t *testing.T) {
	const varSecret, paramSecret = "var-plaintext-7f3a9c", "param-plaintext-e1d2b4"
	eachStore(t, func(t *testing.T, dsn string) {
		h := newHarness(t, dsn)
		h.publishAll()
		r := h.must(200, admin, "PUT", "/api/v1/variables/DB_PASSWORD?environment=staging", map[string]any{"value": varSecret, "sensitive": true})
		if !bytes.Contains(r.body, []byte(`"value":null`)) || bytes.Contains(r.body, []byte(varSecret)) {
			t.Fatalf("set variable answered %s", r.body)
		}
		var vars struct {
			Items []struct {
				Name      string
				Value     *string
				Sensitive bool
			}
		}
		h.must(200, admin, "GET", "/api/v1/variables", nil).json(t, &vars)
		for _, v := range vars.Items {
			if v.Name == "DB_PASSWORD" && (v.Value != nil || !v.Sensitive) {
				t.Fatalf("sensitive variable returned: %+v", v)
			}
		}
		run := h.startRun(runner, backupRunbook, "staging", map[string]string{"TOKEN": paramSecret})
		h.waitRun(run.ID, "at the gate", waitingFor(runbook.WaitKindGate))
		h.must(200, approver, "POST", "/api/v1/runs/"+run.ID+"/gate", map[string]string{"decision": "go", "reason": "ok"})
		h.waitRun(run.ID, "finished", finished)
		// The command saw both values (they were masked in its output).
		ev := h.must(200, admin, "GET", "/api/v1/runs/"+run.ID+"/events", nil)
		if bytes.Contains(ev.body, []byte(varSecret)) || bytes.Contains(ev.body, []byte(paramSecret)) {
			t.Fatalf("events carry a secret: %s", ev.body)
		}
		if !bytes.Contains(ev.body, []byte("with token ***")) {
			t.Fatalf("the step's output does not show the masked secret param: %s", ev.body)
		}
		// The run can be resumed later: the sealed param is stored and opens.
		if sealed, err := h.st.RunSecrets(context.Background(), run.ID); err != nil || len(sealed) != 1 {
			t.Fatalf("run secrets: %v %v", sealed, err)
		}
		for _, raw := range h.rawDatabase(t) {
			for _, secret := range []string{varSecret, paramSecret} {
				if bytes.Contains(raw.data, []byte(secret)) {
					t.Errorf("%s contains the plaintext %q", raw.name, secret)
				}
			}
		}
	})
}

type rawPart struct {
	name string
	data []byte
}

// rawDatabase returns every byte the database holds: the SQLite file and
// its -wal and -shm files, or a dump of every PostgreSQL table.
func (h *harness) rawDatabase(t *testing.T) []rawPart {
	t.Helper()
	var out []rawPart
	if !strings.HasPrefix(h.dsn, "postgres") {
		for _, suffix := range []string{"", "-wal", "-shm"} {
			b, err := os.ReadFile(h.dsn + suffix)
			if err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			out = append(out, rawPart{filepath.Base(h.dsn) + suffix, b})
		}
		if len(out[0].data) == 0 {
			t.Fatal("the SQLite file is empty: nothing was scanned")
		}
		return out
	}
	db, err := sql.Open("pgx", h.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT tablename FROM pg_tables WHERE schemaname = 'public'`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		tables = append(tables, n)
	}
	rows.Close()
	if len(tables) < 10 {
		t.Fatalf("only %d tables found: %v", len(tables), tables)
	}
	for _, tbl := range tables {
		// Each row as text, as pg_dump would write it.
		rows, err := db.Query(fmt.Sprintf(`SELECT t::text FROM %q t`, tbl))
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatal(err)
			}
			buf.WriteString(line)
			buf.WriteByte('\n')
		}
		rows.Close()
		// bytea columns appear hex-encoded in text; decode event text too.
		if tbl == "events" {
			r2, err := db.Query(`SELECT text FROM events`)
			if err != nil {
				t.Fatal(err)
			}
			for r2.Next() {
				var b []byte
				r2.Scan(&b)
				buf.Write(b)
				buf.WriteByte('\n')
			}
			r2.Close()
		}
		out = append(out, rawPart{"table " + tbl, buf.Bytes()})
	}
	return out
}

// TestAuditTamper edits and deletes audit rows directly in SQL and expects
// verification (API and store) to name the first bad row; retention must
// not disturb the chain.
func TestAuditTamper(t *testing.T) {
	eachStore(t, func(t *testing.T, dsn string) {
		h := newHarness(t, dsn)
		for i := 0; i < 6; i++ {
			h.must(201, admin, "POST", "/api/v1/teams", map[string]string{"name": fmt.Sprintf("team%d", i)})
		}
		h.publishAll()
		for i := 0; i < 3; i++ {
			run := h.startRun(admin, searchRunbook, "staging", nil)
			h.waitRun(run.ID, "finished", finished)
		}
		var del struct{ Deleted int }
		h.must(200, admin, "POST", "/api/v1/retention", map[string]int{"keep": 1}).json(t, &del)
		if del.Deleted != 2 {
			t.Fatalf("retention deleted %d runs, want 2", del.Deleted)
		}
		verify := func() (ok bool, seq int64) {
			var v struct {
				OK      bool
				Problem *struct{ Seq int64 }
			}
			h.must(200, admin, "GET", "/api/v1/audit/verify", nil).json(t, &v)
			if v.Problem != nil {
				seq = v.Problem.Seq
			}
			return v.OK, seq
		}
		if ok, seq := verify(); !ok {
			t.Fatalf("untouched log (after retention) fails verification at %d", seq)
		}
		db := h.sqlDB(t)
		defer db.Close()
		exec := func(q string) {
			if _, err := db.Exec(q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		exec(`UPDATE audit_log SET actor = 'mallory' WHERE seq = 4`)
		if ok, seq := verify(); ok || seq != 4 {
			t.Fatalf("edited row 4: ok=%v first bad=%d", ok, seq)
		}
		exec(`UPDATE audit_log SET actor = 'admin' WHERE seq = 4`) // restore
		if ok, _ := verify(); !ok {
			t.Fatal("restored row still fails")
		}
		exec(`DELETE FROM audit_log WHERE seq = 3`)
		if ok, seq := verify(); ok || seq != 3 {
			t.Fatalf("deleted row 3: ok=%v first bad=%d", ok, seq)
		}
		rep, err := h.st.VerifyAudit(context.Background())
		if err != nil || rep.Problem == nil || rep.Problem.Seq != 3 {
			t.Fatalf("store verification: %+v %v", rep, err)
		}
	})
}

func (h *harness) sqlDB(t *testing.T) *sql.DB {
	driver := "sqlite"
	if strings.HasPrefix(h.dsn, "postgres") {
		driver = "pgx"
	}
	db, err := sql.Open(driver, h.dsn)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// TestEventStream reads a run's live events over SSE up to the end event.
func TestEventStream(t *testing.T) {
	h := newHarness(t, filepath.Join(t.TempDir(), "server.db"))
	h.publishAll()
	run := h.startRun(runner, checkRunbook, "staging", nil)
	req, _ := http.NewRequest("GET", h.http.URL+"/api/v1/runs/"+run.ID+"/events/stream", nil)
	req.Header.Set("Authorization", "Bearer "+h.creds[apiKey].key)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	var types []string
	answered := false
	for sc.Scan() {
		line := sc.Text()
		typ, ok := strings.CutPrefix(line, "event: ")
		if !ok {
			continue
		}
		types = append(types, typ)
		if typ == string(runbook.EventManualWaiting) && !answered {
			answered = true
			h.must(200, runner, "POST", "/api/v1/runs/"+run.ID+"/answer", map[string]string{"kind": "manual", "choice": "confirmed"})
		}
		if typ == "end" {
			break
		}
	}
	got := strings.Join(types, ",")
	for _, want := range []string{"run.started", "manual.waiting", "manual.confirmed", "step.output", "run.finished", "end"} {
		if !strings.Contains(got, want) {
			t.Errorf("stream lacks %s: %s", want, got)
		}
	}
	_ = store.ErrNotFound
}
