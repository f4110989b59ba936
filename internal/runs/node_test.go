package runs_test

import (
	"errors"
	"os"
	"testing"
	"time"

	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/store/pgtest"
	"github.com/opsbook/opsbook/internal/testbin"
	hacluster "github.com/opsbook/opsbook/internal/testbin/cluster"
)

func TestMain(m *testing.M) {
	code := pgtest.Run(m)
	testbin.Cleanup() // the opsbook binary the node tests built
	os.Exit(code)
}

// cluster is several real `opsbook serve` nodes on one PostgreSQL
// database (internal/testbin/cluster), failing the test on any error.
type cluster struct {
	t *testing.T
	*hacluster.Cluster
	key string
}

// node is one `opsbook serve` process, started with --node NAME: leases
// of a named node are trusted until they expire, as those of a node on
// another host are, so a takeover waits for the lease ttl, not for the
// same-host check that a killed process is gone.
type node struct {
	*hacluster.Node
	base string
}

type runDetail = hacluster.RunDetail

func newCluster(t *testing.T, ws string, ttl time.Duration) *cluster {
	t.Helper()
	c := &cluster{t: t, Cluster: &hacluster.Cluster{Bin: testbin.Opsbook(t), DSN: pgtest.DSN(t), Workspace: ws, Data: t.TempDir(), TTL: ttl}}
	t.Cleanup(c.Stop)
	return c
}

// start starts a node with workers workers.
func (c *cluster) start(name string, workers int) *node {
	c.t.Helper()
	n, err := c.Start(name, workers)
	if err != nil {
		c.t.Fatal(err)
	}
	c.key = c.Key
	return &node{Node: n, base: n.Base}
}

// kill9 kills the node's process with SIGKILL and reaps it.
func (n *node) kill9() { n.Kill9() }

// do calls the API; an answer outside 2xx is logged when out is set.
func (c *cluster) do(n *node, method, path string, body any, out any) int {
	c.t.Helper()
	code, err := c.Do(n.Node, method, path, body, out)
	var se *hacluster.StatusError
	switch {
	case errors.As(err, &se):
		if out != nil {
			c.t.Log(err)
		}
	case err != nil:
		c.t.Fatal(err)
	}
	return code
}

func (c *cluster) startRun(n *node, rb string, params map[string]string) string {
	c.t.Helper()
	id, err := c.StartRun(n.Node, rb, params)
	if err != nil {
		c.t.Fatalf("start %s: %v", rb, err)
	}
	return id
}

func (c *cluster) run(n *node, id string) runDetail {
	c.t.Helper()
	d, err := c.Run(n.Node, id)
	if err != nil {
		c.t.Fatalf("get run %s: %v", id, err)
	}
	return d
}

func (c *cluster) events(n *node, id string) []runbook.Event {
	c.t.Helper()
	evs, err := c.Events(n.Node, id)
	if err != nil {
		c.t.Fatalf("events of %s: %v", id, err)
	}
	return evs
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
			c.t.Fatalf("run %s never %s (status %s, waiting %+v)\n%s", id, what, d.Status, d.Waiting(), c.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func waitingFor(kind string) func(runDetail) bool {
	return func(d runDetail) bool { return d.Waiting() != nil && d.Waiting().Kind == kind }
}

// haWorkspace writes the cluster package's workspace (gate.md,
// slow.md with an idempotent 6 s step, once.md with one that is not),
// whose steps record each execution in the file ran.
func haWorkspace(t *testing.T) (dir, ran string) {
	t.Helper()
	dir = t.TempDir()
	ran, err := hacluster.WriteWorkspace(dir, 6*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return dir, ran
}

// ranCounts counts the lines of ran: how often each "TAG STEP" ran.
func ranCounts(t *testing.T, ran string) map[string]int {
	t.Helper()
	counts, err := hacluster.RanCounts(ran)
	if err != nil {
		t.Fatal(err)
	}
	return counts
}
