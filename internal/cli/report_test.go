package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/store"
	"github.com/opsbook/opsbook/internal/testbin"
	"github.com/opsbook/opsbook/internal/workspace"
)

// A server and a CLI, both real processes, for `opsbook run --local`'s
// promises: a run executing on a laptop reaches the server's record
// completely, exactly once and in order, whatever dies in between.

// slowRunbook has eight steps of output and sleep: long enough to kill
// something in the middle.
func slowRunbook() string {
	var b strings.Builder
	b.WriteString("---\nkind: runbook\ntitle: Slow change\n---\n\n## Steps\n\n")
	for i := 1; i <= 8; i++ {
		fmt.Fprintf(&b, "### Step %d\n\n```sh {id=s%d verify=none reason=test}\nfor i in $(seq 1 25); do echo \"s%d line $i\"; done\nsleep 0.7\n```\n\n", i, i, i)
	}
	return b.String()
}

// reportWorkspace writes a workspace with the slow runbook, a protected
// production and a runbook with a gate.
func reportWorkspace(t *testing.T) string {
	t.Helper()
	ws := t.TempDir()
	files := map[string]string{
		"opsbook.yaml":           "name: laptop\nenvironments:\n  - name: dev\n  - name: production\n    protected: true\n    reviewers: 0\n    rehearsal: false\n",
		"ops/runbooks/slow.md":   slowRunbook(),
		"ops/runbooks/touch.md":  "---\nkind: runbook\ntitle: Touch\n---\n\n## Steps\n\n### Touch\n\n```sh {id=touch verify=none reason=test}\ntouch \"$OPSBOOK_WORKSPACE/touched\"\n```\n",
		"ops/runbooks/quick.md":  "---\nkind: runbook\ntitle: Quick\n---\n\n## Steps\n\n### One\n\n```sh {id=one verify=none reason=test}\necho one\n```\n\n### Two\n\n```sh {id=two verify=none reason=test}\necho two\n```\n",
		"ops/runbooks/gated.md":  "---\nkind: runbook\ntitle: Gated\n---\n\n## Steps\n\n### Go\n\n```gate {id=go}\nGo when ready.\n```\n\n### Do\n\n```sh {id=do verify=none reason=test}\necho done\n```\n",
		".opsbook/.keep":         "",
		"ops/runbooks/README.md": "Runbooks.\n",
	}
	for name, body := range files {
		p := filepath.Join(ws, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return ws
}

// serveProc is one real `opsbook serve` on a fixed address and database,
// so that it can be killed and started again where it was.
type serveProc struct {
	t        *testing.T
	addr, ws string
	data     string
	cmd      *exec.Cmd
	logs     *lockedBuffer
}

func (s *serveProc) url() string { return "http://" + s.addr }

func (s *serveProc) start() {
	t := s.t
	t.Helper()
	cmd := exec.Command(testbin.Opsbook(t), "serve", "--addr", s.addr, "--data", s.data, "--workspace", s.ws, "--grace", "1s")
	cmd.Env = append(os.Environ(), "OPSBOOK_MASTER_KEY=t:"+base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{5}, 32)))
	s.logs = &lockedBuffer{}
	cmd.Stderr = s.logs
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "opsbook serving") {
				ready <- true
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("opsbook serve did not start:\n%s", s.logs)
	}
	s.cmd = cmd
}

// kill9 kills the server with SIGKILL and reaps it.
func (s *serveProc) kill9() {
	s.cmd.Process.Signal(syscall.SIGKILL)
	s.cmd.Wait()
}

// newServeProc starts a server whose database has two users allowed to
// run everything, alice and mallory, and returns it with their API keys.
func newServeProc(t *testing.T, ws string) (s *serveProc, alice, mallory string) {
	t.Helper()
	testbin.Opsbook(t)
	ctx := context.Background()
	data := t.TempDir()
	st, err := store.Open(ctx, filepath.Join(data, "server.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateTeam(ctx, "ops"); err != nil {
		t.Fatal(err)
	}
	for _, perm := range []auth.Permission{auth.RunbookView, auth.RunbookRun} {
		if err := st.CreateGrant(ctx, &auth.Grant{Team: "ops", Permission: perm}); err != nil {
			t.Fatal(err)
		}
	}
	keys := map[string]string{}
	for _, name := range []string{"alice", "mallory"} {
		u := &store.User{Name: name}
		if err := st.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		if err := st.AddTeamMember(ctx, "ops", u.ID); err != nil {
			t.Fatal(err)
		}
		keys[name] = auth.NewAPIKey()
		if err := st.CreateAPIKey(ctx, &store.APIKey{UserID: u.ID, Name: "t", KeyHash: auth.HashToken(keys[name]), Hint: "obk_"}); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s = &serveProc{t: t, addr: addr, ws: ws, data: data}
	s.start()
	t.Cleanup(func() {
		if s.cmd != nil && s.cmd.ProcessState == nil {
			s.kill9()
		}
	})
	return s, keys["alice"], keys["mallory"]
}

// callAPI calls the server with key; it returns the status and decodes a
// success into out.
func callAPI(t *testing.T, base, key, method, path string, body, out any) (int, string) {
	t.Helper()
	var rd bytes.Buffer
	if body != nil {
		json.NewEncoder(&rd).Encode(body)
	}
	req, _ := http.NewRequest(method, base+path, &rd)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b.Bytes(), out); err != nil {
			t.Fatalf("%s %s: %v\n%s", method, path, err, b.String())
		}
	}
	return resp.StatusCode, b.String()
}

// cliProc starts the opsbook CLI as a process in ws.
func cliProc(t *testing.T, ws, server, key string, args ...string) (*exec.Cmd, *lockedBuffer) {
	t.Helper()
	cmd := exec.Command(testbin.Opsbook(t), append([]string{"-C", ws}, args...)...)
	cmd.Env = append(os.Environ(), "OPSBOOK_SERVER="+server, "OPSBOOK_API_KEY="+key, "OPSBOOK_REPORT_WAIT=60s",
		"GIT_AUTHOR_NAME=laptop-claims-to-be-root", "GIT_COMMITTER_NAME=laptop-claims-to-be-root")
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			cmd.Wait()
		}
	})
	return cmd, out
}

// waitFor polls cond every 50 ms for up to d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// serverRun finds the one run of the server, as alice sees it.
func serverRun(t *testing.T, base, key string) (runbook.Run, bool) {
	var page struct{ Items []runbook.Run }
	if code, _ := callAPI(t, base, key, "GET", "/api/v1/runs", nil, &page); code != 200 || len(page.Items) == 0 {
		return runbook.Run{}, false
	}
	return page.Items[0], true
}

func serverEvents(t *testing.T, base, key, id string) []runbook.Event {
	t.Helper()
	var page struct{ Events []runbook.Event }
	if code, body := callAPI(t, base, key, "GET", "/api/v1/runs/"+id+"/events?limit=10000", nil, &page); code != 200 {
		t.Fatalf("events of %s: %d %s", id, code, body)
	}
	return page.Events
}

func localEvents(t *testing.T, ws, id string) []runbook.Event {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(ws, ".opsbook", "opsbook.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	evs, err := st.Events(context.Background(), id, 0, store.MaxEventLimit)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// sameRecord fails unless the server holds the local log exactly: every
// event once, in order, with its actor the authenticated reporter.
func sameRecord(t *testing.T, local, remote []runbook.Event, reporter string) {
	t.Helper()
	if len(remote) != len(local) {
		t.Fatalf("the server holds %d events, the local log %d", len(remote), len(local))
	}
	for i := range local {
		l, r := local[i], remote[i]
		if l.Type != r.Type || l.Step != r.Step || l.Host != r.Host || l.Stream != r.Stream || l.Text != r.Text || l.Attempt != r.Attempt || !l.Time.Equal(r.Time) {
			t.Fatalf("event %d differs:\nlocal  %+v\nserver %+v", i+1, l, r)
		}
		if r.Actor != "" && r.Actor != reporter {
			t.Fatalf("event %d: actor %q on the server, want the authenticated %q", i+1, r.Actor, reporter)
		}
	}
}

// TestRunLocalSurvivesServerKill: fault — the server is killed with
// SIGKILL in the middle of a reported run and started again. The run goes
// on without waiting, warns once, and when the server is back every event
// arrives exactly once and in order; the run is finished on the server,
// started by the authenticated user, not the name git gives.
func TestRunLocalSurvivesServerKill(t *testing.T) {
	ws := reportWorkspace(t)
	srv, alice, _ := newServeProc(t, ws)
	cli, out := cliProc(t, ws, srv.url(), alice, "run", "ops/runbooks/slow.md", "--env", "dev", "--local")

	var run runbook.Run
	waitFor(t, 30*time.Second, "the run's second step on the server", func() bool {
		r, ok := serverRun(t, srv.url(), alice)
		if !ok {
			return false
		}
		run = r
		for _, ev := range serverEvents(t, srv.url(), alice, r.ID) {
			if ev.Type == runbook.EventStepStarted && ev.Step == "s2" {
				return true
			}
		}
		return false
	})
	srv.kill9()
	// The run goes on while the server is away.
	waitFor(t, 30*time.Second, "the warning", func() bool { return strings.Contains(out.String(), "cannot report run") })
	time.Sleep(1500 * time.Millisecond)
	srv.start()
	if err := cli.Wait(); err != nil {
		t.Fatalf("opsbook run --local: %v\n%s", err, out)
	}
	if n := strings.Count(out.String(), "cannot report run"); n != 1 {
		t.Errorf("warned %d times, want once:\n%s", n, out)
	}
	local := localEvents(t, ws, run.ID)
	sameRecord(t, local, serverEvents(t, srv.url(), alice, run.ID), "alice")
	var d struct {
		runbook.Run
		State *runbook.RunState `json:"state"`
	}
	if code, body := callAPI(t, srv.url(), alice, "GET", "/api/v1/runs/"+run.ID, nil, &d); code != 200 {
		t.Fatalf("run on the server: %d %s", code, body)
	}
	if d.Status != runbook.RunSucceeded || d.FinishedAt.IsZero() || d.CreatedBy != "alice" || d.State.StartedBy != "alice" || len(d.State.Steps) != 8 {
		t.Fatalf("the server's record: status %s, finished %v, created by %q, started by %q, %d steps", d.Status, d.FinishedAt, d.CreatedBy, d.State.StartedBy, len(d.State.Steps))
	}
}

// TestRunLocalResumeAfterCLIKill: fault — the CLI is killed with SIGKILL
// mid-run (events appended on the server whose acknowledgement the CLI
// may never have recorded); `opsbook resume --local` finishes the run and
// the server's record is complete, with no event twice. Fault — an
// attacker with RunbookRun of their own cannot append to, or take over
// the id of, someone else's reported run, nor report into a server-run.
func TestRunLocalResumeAfterCLIKill(t *testing.T) {
	ws := reportWorkspace(t)
	srv, alice, mallory := newServeProc(t, ws)
	cli, out := cliProc(t, ws, srv.url(), alice, "run", "ops/runbooks/slow.md", "--env", "dev", "--local")
	var run runbook.Run
	waitFor(t, 30*time.Second, "the run's third step on the server", func() bool {
		r, ok := serverRun(t, srv.url(), alice)
		if !ok {
			return false
		}
		run = r
		for _, ev := range serverEvents(t, srv.url(), alice, r.ID) {
			if ev.Type == runbook.EventStepOutput && ev.Step == "s3" {
				return true
			}
		}
		return false
	})
	syscall.Kill(-cli.Process.Pid, syscall.SIGKILL)
	cli.Wait()

	// The attacker, allowed to run runbooks but not alice's reporter.
	forged := map[string]any{"events": []runbook.Event{{Seq: 10000, Type: runbook.EventRunFinished, Data: map[string]string{"status": "failed"}}}}
	if code, body := callAPI(t, srv.url(), mallory, "POST", "/api/v1/runs/"+run.ID+"/events", forged, nil); code != http.StatusForbidden && code != http.StatusNotFound {
		t.Fatalf("mallory appended to alice's run: %d %s", code, body)
	}
	takeover := map[string]any{"id": run.ID, "runbook": "ops/runbooks/slow.md", "environment": "dev", "source": slowRunbook()}
	if code, body := callAPI(t, srv.url(), mallory, "POST", "/api/v1/runs/reported", takeover, nil); code != http.StatusConflict {
		t.Fatalf("mallory re-registered alice's run: %d %s", code, body)
	}
	for _, path := range []string{"/cancel", "/resume"} {
		if code, body := callAPI(t, srv.url(), alice, "POST", "/api/v1/runs/"+run.ID+path, map[string]any{}, nil); code != http.StatusConflict || !strings.Contains(body, "opsbook run --local") {
			t.Fatalf("POST %s of a reported run: %d %s, want 409 saying where it executes", path, code, body)
		}
	}

	res, rout := cliProc(t, ws, srv.url(), alice, "resume", run.ID, "--local", "--answer", "retry", "--yes")
	if err := res.Wait(); err != nil {
		t.Fatalf("opsbook resume --local: %v\n%s\n(the run: %s)", err, rout, out)
	}
	local := localEvents(t, ws, run.ID)
	remote := serverEvents(t, srv.url(), alice, run.ID)
	sameRecord(t, local, remote, "alice")
	var d runbook.Run
	callAPI(t, srv.url(), alice, "GET", "/api/v1/runs/"+run.ID, nil, &d)
	if d.Status != runbook.RunSucceeded {
		t.Fatalf("the server's record is %s after resume --local:\n%s", d.Status, rout)
	}
	// A finished run: resume --local only says the server has it all.
	again, aout := cliProc(t, ws, srv.url(), alice, "resume", run.ID, "--local")
	if err := again.Wait(); err != nil || !strings.Contains(aout.String(), "has its whole record") {
		t.Fatalf("resume --local of a finished reported run: %v\n%s", err, aout)
	}
	if n := len(serverEvents(t, srv.url(), alice, run.ID)); n != len(remote) {
		t.Fatalf("a second resume --local changed the server's record: %d events, was %d", n, len(remote))
	}
}

// TestRunLocalServerDownFromTheStart: fault — the server is unreachable
// for the whole run. The run neither fails nor waits for it (one warning),
// its record stays queued in the local store, and `resume --local` once a
// server answers delivers all of it, exactly once.
func TestRunLocalServerDownFromTheStart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ws := reportWorkspace(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there
	t.Setenv("OPSBOOK_API_KEY", "obk_unused")
	t.Setenv("OPSBOOK_REPORT_WAIT", "300ms")
	var out, errb bytes.Buffer
	start := time.Now()
	if code := Main(ctx, []string{"-C", ws, "run", "ops/runbooks/quick.md", "--env", "dev", "--local", "--server", dead}, strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("run --local with the server down: exit %d\n%s%s", code, out.String(), errb.String())
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("the run took %s: it waited for the server", took)
	}
	if n := strings.Count(errb.String(), "cannot report run"); n != 1 || !strings.Contains(errb.String(), "send them with `opsbook resume --local r-") {
		t.Fatalf("warned %d times; stderr:\n%s", n, errb.String())
	}
	st, err := store.Open(ctx, filepath.Join(ws, ".opsbook", "opsbook.db"))
	if err != nil {
		t.Fatal(err)
	}
	runs, err := st.ListRuns(ctx, store.RunFilter{})
	st.Close()
	if err != nil || len(runs) != 1 || runs[0].Status != runbook.RunSucceeded {
		t.Fatalf("local runs: %+v %v", runs, err)
	}
	id := runs[0].ID

	url, key := testServer(t, ctx)
	t.Setenv("OPSBOOK_API_KEY", key)
	t.Setenv("OPSBOOK_REPORT_WAIT", "30s")
	for range 2 { // the second time there is nothing left to send
		out.Reset()
		errb.Reset()
		if code := Main(ctx, []string{"-C", ws, "resume", id, "--local", "--server", url}, strings.NewReader(""), &out, &errb); code != 0 || !strings.Contains(errb.String(), "has its whole record") {
			t.Fatalf("resume --local: exit %d\n%s%s", code, out.String(), errb.String())
		}
	}
	sameRecord(t, localEvents(t, ws, id), serverEvents(t, url, key, id), "ops")
}

// TestRunLocalRefusals: --local needs a server to report to, and a local
// run in a protected environment with a gate is refused with --local as
// without it (fault: the laptop deciding a production gate on its own
// word) — before anything runs or reaches the server.
func TestRunLocalRefusals(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ws := reportWorkspace(t)
	t.Setenv("OPSBOOK_SERVER", "")
	var out, errb bytes.Buffer
	if code := Main(ctx, []string{"-C", ws, "run", "ops/runbooks/quick.md", "--env", "dev", "--local"}, strings.NewReader(""), &out, &errb); code != ExitBadInput || !strings.Contains(errb.String(), "--local reports a run executing here to a server") {
		t.Fatalf("--local without a server: exit %d\n%s", code, errb.String())
	}
	url, key := testServer(t, ctx)
	t.Setenv("OPSBOOK_API_KEY", key)
	errb.Reset()
	if code := Main(ctx, []string{"-C", ws, "run", "ops/runbooks/gated.md", "--env", "production", "--local", "--server", url, "--yes"}, strings.NewReader(""), &out, &errb); code != ExitRefused || !strings.Contains(errb.String(), "is protected and step go is a gate") {
		t.Fatalf("a protected gate with --local: exit %d\n%s", code, errb.String())
	}
	var page struct{ Items []runbook.Run }
	if code, body := callAPI(t, url, key, "GET", "/api/v1/runs", nil, &page); code != 200 || len(page.Items) != 0 {
		t.Fatalf("the refused run reached the server: %d %s", code, body)
	}

	// Fault: someone the server lets view but not run. The server refuses
	// the record, so nothing runs (the step would have written a file).
	for _, call := range []struct {
		path string
		body any
	}{
		{"/api/v1/teams", map[string]any{"name": "lookers"}},
		{"/api/v1/grants", map[string]any{"team": "lookers", "permission": "RunbookView"}},
		{"/api/v1/users", map[string]any{"name": "looker", "password": "a long enough password", "teams": []string{"lookers"}}},
	} {
		if code, body := callAPI(t, url, key, "POST", call.path, call.body, nil); code != 201 {
			t.Fatalf("POST %s: %d %s", call.path, code, body)
		}
	}
	var looker struct{ Key string }
	if code, body := callAPI(t, url, key, "POST", "/api/v1/apikeys", map[string]any{"name": "t", "user": "looker"}, &looker); code != 201 {
		t.Fatalf("looker's key: %d %s", code, body)
	}
	t.Setenv("OPSBOOK_API_KEY", looker.Key)
	errb.Reset()
	if code := Main(ctx, []string{"-C", ws, "run", "ops/runbooks/touch.md", "--env", "dev", "--local", "--server", url}, strings.NewReader(""), &out, &errb); code != ExitRefused || !strings.Contains(errb.String(), "nothing was run") {
		t.Fatalf("run --local refused by the server: exit %d\n%s", code, errb.String())
	}
	if _, err := os.Stat(filepath.Join(ws, "touched")); !os.IsNotExist(err) {
		t.Fatalf("the refused run executed its step: %v", err)
	}
}

// TestRunLocalServerLostPartOfTheRecord: fault — the server's database was
// restored from a backup, so it holds less of a reported run than it once
// acknowledged: nothing of it (404), or its first events only (409 gap).
// The reporter sends the record again from the start; the server skips
// what it has and ends with the whole log, each event once.
func TestRunLocalServerLostPartOfTheRecord(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ws := reportWorkspace(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	url, key := testServer(t, ctx)
	t.Setenv("OPSBOOK_API_KEY", key)
	t.Setenv("OPSBOOK_REPORT_WAIT", "200ms")
	for _, lost := range []string{"everything", "the end"} {
		t.Run(lost, func(t *testing.T) {
			var out, errb bytes.Buffer
			Main(ctx, []string{"-C", ws, "run", "ops/runbooks/quick.md", "--env", "dev", "--local", "--server", dead}, strings.NewReader(""), &out, &errb)
			st, err := store.Open(ctx, filepath.Join(ws, ".opsbook", "opsbook.db"))
			if err != nil {
				t.Fatal(err)
			}
			runs, _ := st.ListRuns(ctx, store.RunFilter{Limit: 1})
			id := runs[0].ID
			local, _ := st.Events(ctx, id, 0, 1000)
			if lost == "the end" {
				// The server has the registration and the first two events.
				p, err := loadPlan(&env{stdout: io.Discard, stderr: io.Discard}, mustWorkspace(t, ws), filepath.Join(ws, "ops/runbooks/quick.md"), "ops/runbooks/quick.md", "dev")
				if err != nil {
					t.Fatal(err)
				}
				if code, body := callAPI(t, url, key, "POST", "/api/v1/runs/reported", reportRequest(runs[0], p), nil); code != 201 {
					t.Fatalf("register: %d %s", code, body)
				}
				if code, body := callAPI(t, url, key, "POST", "/api/v1/runs/"+id+"/events", map[string]any{"events": local[:2]}, nil); code != 200 {
					t.Fatalf("first events: %d %s", code, body)
				}
			}
			// What the laptop believes: registered, all but the last event taken.
			if err := st.MarkRunReportRegistered(ctx, id); err != nil {
				t.Fatal(err)
			}
			if err := st.SetRunReportSent(ctx, id, local[len(local)-2].Seq); err != nil {
				t.Fatal(err)
			}
			st.Close()
			t.Setenv("OPSBOOK_REPORT_WAIT", "30s")
			errb.Reset()
			if code := Main(ctx, []string{"-C", ws, "resume", id, "--local", "--server", url}, strings.NewReader(""), &out, &errb); code != 0 {
				t.Fatalf("resume --local: exit %d\n%s", code, errb.String())
			}
			sameRecord(t, localEvents(t, ws, id), serverEvents(t, url, key, id), "ops")
		})
	}
}

func mustWorkspace(t *testing.T, dir string) *workspace.Workspace {
	t.Helper()
	ws, err := workspace.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return ws
}

// TestRunLocalLiveViewServerDown: in a terminal, the reporter's news goes
// into the live view instead of lines that would break its region, and
// what is left for the server is said once the view has ended.
func TestRunLocalLiveViewServerDown(t *testing.T) {
	bin := testbin.Opsbook(t)
	ws := reportWorkspace(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	p := newTmuxPane(t, 120, 30, fmt.Sprintf("cd %s && TERM=xterm-256color OPSBOOK_API_KEY=obk_x OPSBOOK_REPORT_WAIT=200ms %s run ops/runbooks/slow.md --env dev --local --server %s; echo EXIT=$?; sleep 120", ws, bin, dead))
	s := p.waitFor("cannot report run")
	if !strings.Contains(s, "opsbook ▸ Slow change · dev") {
		t.Errorf("the notice is not in the live view:\n%s", s)
	}
	s = p.waitFor("EXIT=0")
	if flat := strings.ReplaceAll(s, "\n", ""); !strings.Contains(flat, "wait in the local store: send them with `opsbook resume --local r-") {
		t.Errorf("after the view, what is left is not said:\n%s", s)
	}
	if all := p.screen(true); strings.Count(all, "cannot report run") > 1 || strings.Contains(all, "opsbook ▸") {
		t.Errorf("stale frames or repeated warnings on the screen:\n%s", all)
	}
}

// TestRunLocalUnsentLater: a run whose record the server never got is
// named by the next reported run; and when its runbook has changed since,
// resume --local refuses to hand the server documents it did not run
// (fault: the server's record claiming the wrong content).
func TestRunLocalUnsentLater(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ws := reportWorkspace(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	t.Setenv("OPSBOOK_API_KEY", "obk_unused")
	t.Setenv("OPSBOOK_REPORT_WAIT", "200ms")
	var out, errb bytes.Buffer
	if code := Main(ctx, []string{"-C", ws, "run", "ops/runbooks/quick.md", "--env", "dev", "--local", "--server", dead}, strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("exit %d\n%s", code, errb.String())
	}
	st, err := store.Open(ctx, filepath.Join(ws, ".opsbook", "opsbook.db"))
	if err != nil {
		t.Fatal(err)
	}
	runs, _ := st.ListRuns(ctx, store.RunFilter{})
	st.Close()
	first := runs[0].ID

	url, key := testServer(t, ctx)
	t.Setenv("OPSBOOK_API_KEY", key)
	errb.Reset()
	if code := Main(ctx, []string{"-C", ws, "run", "ops/runbooks/touch.md", "--env", "dev", "--local", "--server", url}, strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("exit %d\n%s", code, errb.String())
	}
	if !strings.Contains(errb.String(), "1 earlier run(s) have records the server still lacks") || !strings.Contains(errb.String(), first) {
		t.Fatalf("the next run does not name the unsent one:\n%s", errb.String())
	}
	quick := filepath.Join(ws, "ops/runbooks/quick.md")
	src, _ := os.ReadFile(quick)
	if err := os.WriteFile(quick, []byte(strings.Replace(string(src), "echo two", "echo 2", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	errb.Reset()
	if code := Main(ctx, []string{"-C", ws, "resume", first, "--local", "--server", url}, strings.NewReader(""), &out, &errb); code != ExitBadInput || !strings.Contains(errb.String(), "has changed since") {
		t.Fatalf("resume --local of a run whose runbook changed: exit %d\n%s", code, errb.String())
	}
	if code, _ := callAPI(t, url, key, "GET", "/api/v1/runs/"+first, nil, nil); code != http.StatusNotFound {
		t.Fatalf("the server has the run whose documents changed: %d", code)
	}
}
