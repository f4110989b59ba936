package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
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
	"github.com/opsbook/opsbook/internal/store"
)

// serveProcess is a real `opsbook serve` in a child process.
type serveProcess struct {
	cmd  *exec.Cmd
	base string
	logs *bytes.Buffer
}

func startServe(t *testing.T, dsn, data string) *serveProcess {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ws, _ := filepath.Abs("testdata/workspace")
	args := strings.Join([]string{"--addr", addr, "--db", dsn, "--data", data, "--workspace", ws}, "\x1f")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "OPSBOOK_TEST_SERVE_ARGS="+args,
		"OPSBOOK_MASTER_KEY=crash:"+base64.StdEncoding.EncodeToString(testKey))
	logs := &bytes.Buffer{}
	cmd.Stderr = logs
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	ready := make(chan bool, 1)
	go func() {
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "opsbook serving") {
				ready <- true
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("server did not start:\n%s", logs)
	}
	p := &serveProcess{cmd: cmd, base: "http://" + addr, logs: logs}
	t.Cleanup(func() { p.cmd.Process.Kill(); p.cmd.Wait() })
	return p
}

func (p *serveProcess) do(t *testing.T, key, method, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, p.base+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

// TestServerCrashResume kills -9 a server while a run waits at a gate;
// the next start finds the run interrupted and resumes it, and the gate
// decided on the new server completes it without re-running the finished
// step. SIGTERM then shuts the server down cleanly.
func TestServerCrashResume(t *testing.T) {
	eachStore(t, func(t *testing.T, dsn string) {
		data := t.TempDir()
		if !strings.HasPrefix(dsn, "postgres") {
			dsn = filepath.Join(data, "server.db")
		}
		first := startServe(t, dsn, data)
		// An admin API key straight in the store (the first start made "admin").
		ctx := context.Background()
		st, err := store.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		admin, err := st.GetUserByName(ctx, "admin")
		if err != nil {
			t.Fatal(err)
		}
		key := auth.NewAPIKey()
		if err := st.CreateAPIKey(ctx, &store.APIKey{UserID: admin.ID, Name: "crash", KeyHash: auth.HashToken(key), Hint: "obk_"}); err != nil {
			t.Fatal(err)
		}
		st.Close()
		if code, body := first.do(t, key, "POST", "/api/v1/runs", `{"runbook":"ops/runbooks/payments-backup.md","environment":"staging","params":{"TOKEN":"crash-token-1"},"snapshot":"current"}`); code != 201 {
			t.Fatalf("start: %d %s", code, body)
		}
		var runID string
		waitFor := func(p *serveProcess, what string, cond func(body string) bool) string {
			deadline := time.Now().Add(20 * time.Second)
			for {
				code, body := p.do(t, key, "GET", "/api/v1/runs?limit=1", "")
				if code == 200 && strings.Contains(body, `"id":"`) {
					runID = strings.SplitN(strings.SplitN(body, `"id":"`, 2)[1], `"`, 2)[0]
					_, detail := p.do(t, key, "GET", "/api/v1/runs/"+runID, "")
					if cond(detail) {
						return detail
					}
				}
				if time.Now().After(deadline) {
					t.Fatalf("run never %s; logs:\n%s", what, p.logs)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		waitFor(first, "waiting at the gate", func(b string) bool { return strings.Contains(b, `"kind":"gate"`) })
		first.cmd.Process.Signal(syscall.SIGKILL)
		first.cmd.Wait()

		second := startServe(t, dsn, data)
		waitFor(second, "resumed and waiting again", func(b string) bool {
			return strings.Contains(b, `"kind":"gate"`) && strings.Contains(b, `"resumes"`)
		})
		if code, body := second.do(t, key, "POST", "/api/v1/runs/"+runID+"/gate", `{"decision":"go","reason":"after the crash"}`); code != 200 {
			t.Fatalf("gate on the second server: %d %s", code, body)
		}
		waitFor(second, "finished", func(b string) bool { return strings.Contains(b, `"status":"succeeded"`) })
		_, events := second.do(t, key, "GET", "/api/v1/runs/"+runID+"/events", "")
		if n := strings.Count(events, `"type":"step.started","step":"dump"`); n != 1 {
			t.Errorf("step dump started %d times, want once (it finished before the crash)\n%s", n, events)
		}
		second.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- second.cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("SIGTERM: exit %v\n%s", err, second.logs)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("server did not stop on SIGTERM\n%s", second.logs)
		}
		if !strings.Contains(second.logs.String(), "shutting down") {
			t.Errorf("no graceful shutdown in the log:\n%s", second.logs)
		}
	})
}
