package runs_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"github.com/opsbook/opsbook/internal/testbin"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/store"
	"github.com/opsbook/opsbook/internal/store/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }

// cluster is several real `opsbook serve` nodes on one PostgreSQL
// database, sharing a workspace, a data directory (the master key) and an
// admin API key.
type cluster struct {
	t     *testing.T
	dsn   string
	ws    string
	data  string
	key   string
	ttl   time.Duration
	nodes []*node
}

// node is one `opsbook serve` process. It runs with --node NAME: leases
// of a named node are trusted until they expire, as those of a node on
// another host are, so a takeover waits for the lease ttl, not for the
// same-host check that a killed process is gone.
type node struct {
	name string
	cmd  *exec.Cmd
	base string
	logs *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var testKey = bytes.Repeat([]byte{7}, 32)

func newCluster(t *testing.T, ws string, ttl time.Duration) *cluster {
	t.Helper()
	testbin.Opsbook(t)
	return &cluster{t: t, dsn: pgtest.DSN(t), ws: ws, data: t.TempDir(), ttl: ttl}
}

// start starts a node with workers workers.
func (c *cluster) start(name string, workers int) *node {
	t := c.t
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(testbin.Opsbook(t), "serve", "--addr", addr, "--db", c.dsn, "--data", c.data, "--workspace", c.ws,
		"--workers", fmt.Sprint(workers), "--lease-ttl", c.ttl.String(), "--grace", "1s", "--node", name)
	cmd.Env = append(os.Environ(), "OPSBOOK_MASTER_KEY=ha:"+base64.StdEncoding.EncodeToString(testKey))
	logs := &syncBuffer{}
	cmd.Stderr = logs
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
		t.Fatalf("node %s did not start:\n%s", name, logs)
	}
	n := &node{name: name, cmd: cmd, base: "http://" + addr, logs: logs}
	t.Cleanup(func() { n.cmd.Process.Kill(); n.cmd.Wait() })
	c.nodes = append(c.nodes, n)
	if c.key == "" {
		c.key = adminKey(t, c.dsn)
	}
	return n
}

// kill9 kills the node's process with SIGKILL and reaps it.
func (n *node) kill9() {
	n.cmd.Process.Signal(syscall.SIGKILL)
	n.cmd.Wait()
}

// adminKey creates an API key of the admin the first start made.
func adminKey(t *testing.T, dsn string) string {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	admin, err := st.GetUserByName(ctx, "admin")
	if err != nil {
		t.Fatal(err)
	}
	key := auth.NewAPIKey()
	if err := st.CreateAPIKey(ctx, &store.APIKey{UserID: admin.ID, Name: "ha", KeyHash: auth.HashToken(key), Hint: "obk_"}); err != nil {
		t.Fatal(err)
	}
	return key
}

func (c *cluster) do(n *node, method, path string, body any, out any) int {
	c.t.Helper()
	var rd bytes.Buffer
	if body != nil {
		json.NewEncoder(&rd).Encode(body)
	}
	req, _ := http.NewRequest(method, n.base+path, &rd)
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s on %s: %v", method, path, n.name, err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b.Bytes(), out); err != nil {
			c.t.Fatalf("%s %s: %v\n%s", method, path, err, b.String())
		}
	}
	if resp.StatusCode >= 300 && out != nil {
		c.t.Logf("%s %s on %s: %d %s", method, path, n.name, resp.StatusCode, b.String())
	}
	return resp.StatusCode
}

func (c *cluster) startRun(n *node, rb string, params map[string]string) string {
	c.t.Helper()
	var run runbook.Run
	if code := c.do(n, "POST", "/api/v1/runs", map[string]any{"runbook": rb, "environment": "dev", "params": params, "snapshot": "current"}, &run); code != 201 {
		c.t.Fatalf("start %s on %s: %d", rb, n.name, code)
	}
	return run.ID
}

type runDetail struct {
	runbook.Run
	State *runbook.RunState `json:"state"`
}

func (d runDetail) waiting() *runbook.Waiting {
	if d.State == nil {
		return nil
	}
	return d.State.Waiting
}

func (c *cluster) run(n *node, id string) runDetail {
	c.t.Helper()
	var d runDetail
	if code := c.do(n, "GET", "/api/v1/runs/"+id, nil, &d); code != 200 {
		c.t.Fatalf("get run %s on %s: %d", id, n.name, code)
	}
	return d
}

func (c *cluster) events(n *node, id string) []runbook.Event {
	c.t.Helper()
	var all []runbook.Event
	after := int64(0)
	for {
		var page struct {
			Events []runbook.Event `json:"events"`
		}
		if code := c.do(n, "GET", fmt.Sprintf("/api/v1/runs/%s/events?after=%d", id, after), nil, &page); code != 200 {
			c.t.Fatalf("events of %s: %d", id, code)
		}
		if len(page.Events) == 0 {
			return all
		}
		all = append(all, page.Events...)
		after = page.Events[len(page.Events)-1].Seq
	}
}

// waitRun polls the run on n until cond holds.
func (c *cluster) waitRun(n *node, id, what string, within time.Duration, cond func(runDetail) bool) runDetail {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for {
		d := c.run(n, id)
		if cond(d) {
			return d
		}
		if time.Now().After(deadline) {
			var logs strings.Builder
			for _, n := range c.nodes {
				fmt.Fprintf(&logs, "--- %s\n%s\n", n.name, n.logs)
			}
			c.t.Fatalf("run %s never %s (status %s, waiting %+v)\n%s", id, what, d.Status, d.waiting(), logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func waitingFor(kind string) func(runDetail) bool {
	return func(d runDetail) bool { return d.waiting() != nil && d.waiting().Kind == kind }
}

// haWorkspace writes a workspace whose runbooks record each step they run
// in the file ran (one "TAG STEP" line a run), so repeats show.
func haWorkspace(t *testing.T) (dir, ran string) {
	t.Helper()
	dir = t.TempDir()
	ran = filepath.Join(dir, "ran")
	write := func(rel, s string) {
		p := filepath.Join(dir, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("opsbook.yaml", "name: ha\nenvironments:\n  - name: dev\n")
	front := "---\nkind: runbook\ntitle: %s\nparams:\n  TAG: {type: string, required: true}\n---\n\n# %s\n\n## Steps\n\n"
	step := func(id, attrs, cmd string) string {
		return fmt.Sprintf("### %s\n\n```sh {id=%s%s}\necho \"$TAG %s\" >> %s\n%s\n```\n\n", id, id, attrs, id, ran, cmd)
	}
	write("ops/runbooks/gate.md", fmt.Sprintf(front, "Gate", "Gate")+step("before", "", "")+
		"### Go\n\n```gate {id=go approvers=1}\nGo on.\n```\n\n"+step("after", "", ""))
	write("ops/runbooks/slow.md", fmt.Sprintf(front, "Slow", "Slow")+step("first", "", "")+
		step("slow", " idempotent", "sleep 6")+step("last", "", ""))
	write("ops/runbooks/once.md", fmt.Sprintf(front, "Once", "Once")+step("first", "", "")+
		step("slow", "", "sleep 6")+step("last", "", ""))
	return dir, ran
}

// ranCounts counts the lines of ran: how often each "TAG STEP" ran.
func ranCounts(t *testing.T, ran string) map[string]int {
	t.Helper()
	b, err := os.ReadFile(ran)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l != "" {
			counts[l]++
		}
	}
	return counts
}
