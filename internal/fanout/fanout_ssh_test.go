package fanout_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/opsbook/opsbook/internal/executor"
	"github.com/opsbook/opsbook/internal/executor/sshexec"
	"github.com/opsbook/opsbook/internal/executor/sshexec/sshdtest"
	"github.com/opsbook/opsbook/internal/fanout"
	"github.com/opsbook/opsbook/internal/runbook"
)

// TestRollingOverRealSSHD rolls a step over four real sshd hosts and one
// dead address in batches of two, then re-runs only what did not succeed.
func TestRollingOverRealSSHD(t *testing.T) {
	servers := sshdtest.Start(t, 4)
	pool, err := sshexec.NewPool(sshexec.Options{
		IdentityFiles:      []string{sshdtest.ClientKey(servers[0])},
		KnownHostsFiles:    []string{sshdtest.KnownHosts(t, servers...)},
		SkipUserKnownHosts: true,
		ConnectTimeout:     3 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadPort := l.Addr().(*net.TCPAddr).Port
	l.Close()

	hs := []runbook.Host{servers[0].Host, servers[1].Host, {Name: "dead", Address: "127.0.0.1", Port: deadPort, User: servers[0].Host.User}, servers[2].Host, servers[3].Host}
	step := func(ctx context.Context, h runbook.Host) error {
		ex, err := pool.Get(ctx, h)
		if err != nil {
			return err
		}
		res, err := ex.Run(ctx, executor.Command{Script: "test -n \"$SSH_CONNECTION\""})
		if err != nil {
			return err
		}
		if !res.Succeeded() {
			return fmt.Errorf("exit status %d", res.ExitCode)
		}
		return nil
	}
	results := fanout.Run(context.Background(), hs, fanout.Policy{Batch: "2", MaxFailures: "0"}, step)
	if got, want := summary(results), "host1:ok/b1 host2:ok/b1 dead:fail/b2 host3:ok/b2 host4:skip"; got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	retry := fanout.FailedHosts(results)
	retry[0] = servers[0].Host // the dead host was fixed: it now points at a live sshd
	again := fanout.Run(context.Background(), retry, fanout.Policy{Batch: "2"}, step)
	if got, want := summary(again), "host1:ok/b1 host4:ok/b1"; got != want {
		t.Errorf("re-run: got %s, want %s", got, want)
	}
}
