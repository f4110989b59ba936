package labs

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opsbook/opsbook/internal/markdown"
	"github.com/opsbook/opsbook/internal/runbook"
)

// libraryBlock is a check block of a library runbook's step, as written.
func libraryBlock(t *testing.T, file, step string, pick func(*runbook.Step) *runbook.Block) string {
	t.Helper()
	doc, _, err := markdown.ParseFile(filepath.Join("..", "workspace", "library", file))
	must(t, err)
	for i := range doc.Steps {
		if doc.Steps[i].ID == step {
			if b := pick(&doc.Steps[i]); b != nil {
				return b.Body
			}
		}
	}
	t.Fatalf("%s has no such block in step %s", file, step)
	return ""
}

// runBlock runs a block as the engine runs a bash block (errexit,
// pipefail), on this host, with the runbook's parameters for a cluster on
// port: PG_SUDO is empty (the lab's clusters trust loopback, so no identity
// change is needed) and libpq finds the lab's socketless clusters on
// 127.0.0.1 through PGHOST, as ~/.pgpass would give a password. The block
// runs exactly as written.
func runBlock(t *testing.T, body string, port int, env ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("bash", "-e", "-o", "pipefail", "-c", body)
	cmd.Env = append(os.Environ(), "PGHOST=127.0.0.1", "PGUSER=postgres", "PG_SUDO=", fmt.Sprintf("DB_PORT=%d", port))
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// TestFailoverLagCheck runs the DR failover's lag precheck, as the library
// writes it, against a real primary and streaming replica. Fault class: a
// check that fails when it must not — an idle primary whose last
// transaction is older than the limit, with a replica that replayed
// everything, used to stop a real failover at its first step. And the
// opposite fault, which it must catch: WAL received but not replayed (replay
// stopped) for longer than the limit.
func TestFailoverLagCheck(t *testing.T) {
	requireTools(t, "psql")
	t.Parallel()
	p := &pgLab{primary: startPG(t)}
	psql(t, p.primary, "postgres", "create table t (x int); insert into t values (1)")
	r, err := p.primary.StartReplica()
	if err != nil {
		t.Fatalf("start the replica: %v", err)
	}
	t.Cleanup(func() { r.Stop() })
	p.replica = r
	waitFor(t, "the replica to replay", func() bool { return psqlTry(r, "postgres", "select count(*) from t") == "1" })
	check := libraryBlock(t, "postgres-dr-failover.md", "precheck", func(s *runbook.Step) *runbook.Block { return s.Action })

	// The primary stays idle for longer than the limit.
	time.Sleep(3 * time.Second)
	if out, err := runBlock(t, check, r.Port(), "MAX_LAG_SECONDS=2"); err != nil || !strings.Contains(out, "replay lag: 0 s") {
		t.Fatalf("idle primary, replica fully replayed: the check failed (%v):\n%s", err, out)
	}

	// Replay stops while the primary writes: the replica falls behind.
	psql(t, r, "postgres", "select pg_wal_replay_pause()")
	psql(t, p.primary, "postgres", "insert into t values (2)")
	waitFor(t, "the replica to receive the WAL", func() bool {
		return psqlTry(r, "postgres", "select pg_last_wal_receive_lsn() > pg_last_wal_replay_lsn()") == "t"
	})
	time.Sleep(3 * time.Second)
	if out, err := runBlock(t, check, r.Port(), "MAX_LAG_SECONDS=2"); err == nil {
		t.Fatalf("replay stopped for 3 s with WAL waiting: the check passed:\n%s", out)
	}
	// The same check on the primary: not a replica, it fails.
	psql(t, r, "postgres", "select pg_wal_replay_resume()")
	if out, err := runBlock(t, check, p.primary.Port(), "MAX_LAG_SECONDS=2"); err == nil {
		t.Fatalf("the check passed on the primary:\n%s", out)
	}
}

// TestFailoverWriteCheck runs the DR failover's "applications write again"
// wait, as the library writes it, against a real new primary. Fault class:
// a check that cannot fail — it used to count its own session as an
// application. With nobody else connected it must fail; with an
// application connected and committing it must pass.
func TestFailoverWriteCheck(t *testing.T) {
	requireTools(t, "psql")
	t.Parallel()
	c := startPG(t)
	psql(t, c, "postgres", "create table app (x int)")
	check := libraryBlock(t, "postgres-dr-failover.md", "writes", func(s *runbook.Step) *runbook.Block { return s.Until })

	if out, err := runBlock(t, check, c.Port()); err == nil {
		t.Fatalf("nobody writes: the check passed:\n%s", out)
	}

	app := startSession(t, c, "postgres")
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
				psqlErr(c, "postgres", "insert into app values (1)")
			}
		}
	}()
	out, err := runBlock(t, check, c.Port())
	close(stop)
	<-done
	app.stop()
	if err != nil {
		t.Fatalf("an application connected and committing: the check failed (%v):\n%s", err, out)
	}
}
