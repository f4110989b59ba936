// Package cluster starts several real `opsbook serve` processes (the
// binary testbin builds) on one database, for the tests and the benchmark
// (bench/ha) that kill nodes with SIGKILL and start them again. The nodes
// share a workspace, a data directory (the master key) and an admin API
// key, as the nodes of one deployment do.
package cluster

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
	"sync"
	"syscall"
	"time"

	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/store"
)

// MasterKey is the master key every node of a cluster is given.
var MasterKey = bytes.Repeat([]byte{7}, 32)

// Cluster is the configuration the nodes share and the nodes started.
type Cluster struct {
	Bin       string        // the opsbook binary
	DSN       string        // postgres:// URL of the shared database
	Workspace string        // the workspace every node serves
	Data      string        // the shared data directory
	TTL       time.Duration // --lease-ttl
	Args      []string      // more `opsbook serve` flags for every node
	Key       string        // an admin API key, made after the first start

	mu    sync.Mutex
	nodes []*Node
}

// Node is one `opsbook serve` process.
type Node struct {
	Name string
	Base string // http://127.0.0.1:PORT
	Logs *Buffer
	cmd  *exec.Cmd
	done chan struct{}
}

// Buffer is a bytes.Buffer safe for the process's writes and our reads.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Start starts a node named name (--node NAME: its leases are trusted
// until they expire, as those of a node on another host are, so a
// takeover waits for the lease ttl rather than for the same-host check
// that a killed process is gone) with workers workers, and waits until it
// serves. The first start also makes the admin API key.
func (c *Cluster) Start(name string, workers int) (*Node, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	args := []string{"serve", "--addr", addr, "--db", c.DSN, "--data", c.Data, "--workspace", c.Workspace,
		"--workers", fmt.Sprint(workers), "--lease-ttl", c.TTL.String(), "--grace", "1s", "--node", name}
	cmd := exec.Command(c.Bin, append(args, c.Args...)...)
	cmd.Env = append(os.Environ(), "OPSBOOK_MASTER_KEY=ha:"+base64.StdEncoding.EncodeToString(MasterKey))
	// The node dies with the process that started it, however that ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	logs := &Buffer{}
	cmd.Stderr = logs
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start node %s: %w", name, err)
	}
	n := &Node{Name: name, Base: "http://" + addr, Logs: logs, cmd: cmd, done: make(chan struct{})}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "opsbook serving") {
				ready <- true
			}
		}
		io.Copy(io.Discard, out)
		cmd.Wait()
		close(n.done)
	}()
	select {
	case <-ready:
	case <-n.done:
		return nil, fmt.Errorf("node %s exited on start:\n%s", name, logs)
	case <-time.After(60 * time.Second):
		n.Kill9()
		return nil, fmt.Errorf("node %s did not start within 60s:\n%s", name, logs)
	}
	c.mu.Lock()
	c.nodes = append(c.nodes, n)
	c.mu.Unlock()
	if c.Key == "" {
		if c.Key, err = AdminKey(context.Background(), c.DSN); err != nil {
			return n, err
		}
	}
	return n, nil
}

// Nodes are the nodes started, live or not.
func (c *Cluster) Nodes() []*Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Node(nil), c.nodes...)
}

// Logs is every node's standard error, for a failure's report.
func (c *Cluster) Logs() string {
	var b strings.Builder
	for _, n := range c.Nodes() {
		fmt.Fprintf(&b, "--- %s (%s)\n%s\n", n.Name, n.Base, n.Logs)
	}
	return b.String()
}

// Stop kills every node still running.
func (c *Cluster) Stop() {
	for _, n := range c.Nodes() {
		n.Kill9()
	}
}

// Kill9 kills the node's process with SIGKILL and waits until it is gone.
func (n *Node) Kill9() {
	n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.done
}

// Alive reports whether the process still runs.
func (n *Node) Alive() bool {
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

// AdminKey creates an API key of the admin the first start made.
func AdminKey(ctx context.Context, dsn string) (string, error) {
	st, err := store.Open(ctx, dsn)
	if err != nil {
		return "", err
	}
	defer st.Close()
	admin, err := st.GetUserByName(ctx, "admin")
	if err != nil {
		return "", fmt.Errorf("the first administrator: %w", err)
	}
	key := auth.NewAPIKey()
	if err := st.CreateAPIKey(ctx, &store.APIKey{UserID: admin.ID, Name: "cluster", KeyHash: auth.HashToken(key), Hint: "obk_"}); err != nil {
		return "", err
	}
	return key, nil
}

// StatusError is an answer of the API outside 2xx.
type StatusError struct {
	Method, URL string
	Code        int
	Body        string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s %s: %d %s", e.Method, e.URL, e.Code, strings.TrimSpace(e.Body))
}

// Do calls the API of n as the admin, sending body as JSON and decoding a
// 2xx answer into out (when not nil). It returns the status; an answer
// outside 2xx is a *StatusError.
func (c *Cluster) Do(n *Node, method, path string, body, out any) (int, error) {
	var rd bytes.Buffer
	if body != nil {
		json.NewEncoder(&rd).Encode(body)
	}
	req, err := http.NewRequest(method, n.Base+path, &rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.Key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s %s on %s: %w", method, path, n.Name, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode >= 300 {
		return resp.StatusCode, &StatusError{method, n.Name + ":" + path, resp.StatusCode, string(b)}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: %w\n%s", method, path, err, b)
		}
	}
	return resp.StatusCode, nil
}

// StartRun starts the runbook rb in environment dev on n with the
// current snapshot and returns the run's id.
func (c *Cluster) StartRun(n *Node, rb string, params map[string]string) (string, error) {
	var run runbook.Run
	if _, err := c.Do(n, "POST", "/api/v1/runs", map[string]any{"runbook": rb, "environment": "dev", "params": params, "snapshot": "current"}, &run); err != nil {
		return "", err
	}
	return run.ID, nil
}

// RunDetail is GET /api/v1/runs/{id}: the run and the state derived from
// its log.
type RunDetail struct {
	runbook.Run
	State *runbook.RunState `json:"state"`
}

// Waiting is what the run waits for, or nil.
func (d RunDetail) Waiting() *runbook.Waiting {
	if d.State == nil {
		return nil
	}
	return d.State.Waiting
}

// Run reads one run through n.
func (c *Cluster) Run(n *Node, id string) (RunDetail, error) {
	var d RunDetail
	_, err := c.Do(n, "GET", "/api/v1/runs/"+id, nil, &d)
	return d, err
}

// Events reads the whole log of a run through n, page by page.
func (c *Cluster) Events(n *Node, id string) ([]runbook.Event, error) {
	var all []runbook.Event
	after := int64(0)
	for {
		var page struct {
			Events []runbook.Event `json:"events"`
		}
		if _, err := c.Do(n, "GET", fmt.Sprintf("/api/v1/runs/%s/events?after=%d", id, after), nil, &page); err != nil {
			return all, err
		}
		if len(page.Events) == 0 {
			return all, nil
		}
		all = append(all, page.Events...)
		after = page.Events[len(page.Events)-1].Seq
	}
}

// WriteWorkspace writes a workspace into dir whose runbooks take a
// parameter TAG and record each step they execute as a line "TAG STEP" in
// the file ran (returned), so repeated executions show, and print
// "ran TAG STEP" as the step's output:
//
//   - ops/runbooks/gate.md: step before, gate go (1 approver), step after;
//   - ops/runbooks/slow.md: step first, step slow (idempotent, sleeps
//     slow), step last;
//   - ops/runbooks/once.md: the same with a slow step that is not
//     idempotent.
func WriteWorkspace(dir string, slow time.Duration) (ran string, err error) {
	ran = filepath.Join(dir, "ran")
	write := func(rel, s string) {
		p := filepath.Join(dir, rel)
		if err == nil {
			err = os.MkdirAll(filepath.Dir(p), 0o755)
		}
		if err == nil {
			err = os.WriteFile(p, []byte(s), 0o644)
		}
	}
	write("opsbook.yaml", "name: ha\nenvironments:\n  - name: dev\n")
	front := "---\nkind: runbook\ntitle: %s\nparams:\n  TAG: {type: string, required: true}\n---\n\n# %s\n\n## Steps\n\n"
	step := func(id, attrs, cmd string) string {
		return fmt.Sprintf("### %s\n\n```sh {id=%s%s}\necho \"$TAG %s\" >> %s\necho \"ran $TAG %s\"\n%s\n```\n\n", id, id, attrs, id, ran, id, cmd)
	}
	sleep := fmt.Sprintf("sleep %g", slow.Seconds())
	write("ops/runbooks/gate.md", fmt.Sprintf(front, "Gate", "Gate")+step("before", "", "")+
		"### Go\n\n```gate {id=go approvers=1}\nGo on.\n```\n\n"+step("after", "", ""))
	write("ops/runbooks/slow.md", fmt.Sprintf(front, "Slow", "Slow")+step("first", "", "")+
		step("slow", " idempotent", sleep)+step("last", "", ""))
	write("ops/runbooks/once.md", fmt.Sprintf(front, "Once", "Once")+step("first", "", "")+
		step("slow", "", sleep)+step("last", "", ""))
	return ran, err
}

// RanCounts counts the lines of the file ran of WriteWorkspace: how often
// each "TAG STEP" was executed.
func RanCounts(ran string) (map[string]int, error) {
	b, err := os.ReadFile(ran)
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	counts := map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l != "" {
			counts[l]++
		}
	}
	return counts, nil
}
