package store_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/store"
	"github.com/opsbook/opsbook/internal/store/pgtest"
)

// Environment of the helper process the lease tests start (this test
// binary again): it opens the store, waits for the go file to appear,
// acquires the run and prints "won" or "locked", then holds the lease until
// its stdin closes.
const (
	envHelperDSN = "OPSBOOK_STORE_HELPER_DSN"
	envHelperRun = "OPSBOOK_STORE_HELPER_RUN"
	envHelperGo  = "OPSBOOK_STORE_HELPER_GO"

	// In append mode the helper appends events to the run forever, printing
	// the last seq of each acknowledged batch, until it is killed.
	envHelperAppend = "OPSBOOK_STORE_HELPER_APPEND"
)

func TestMain(m *testing.M) {
	if dsn := os.Getenv(envHelperDSN); dsn != "" {
		if os.Getenv(envHelperAppend) != "" {
			os.Exit(appendHelper(dsn, os.Getenv(envHelperRun)))
		}
		os.Exit(acquireHelper(dsn, os.Getenv(envHelperRun), os.Getenv(envHelperGo)))
	}
	os.Exit(pgtest.Run(m))
}

func acquireHelper(dsn, runID, goFile string) int {
	ctx := context.Background()
	s, err := store.Open(ctx, dsn)
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	defer s.Close()
	fmt.Println("ready")
	for deadline := time.Now().Add(time.Minute); goFile != ""; {
		if _, err := os.Stat(goFile); err == nil {
			break
		}
		if time.Now().After(deadline) {
			fmt.Println("error: no go file after a minute")
			return 1
		}
		time.Sleep(time.Millisecond)
	}
	lease, err := s.AcquireRun(ctx, runID, store.ProcessOwner(), time.Hour)
	switch {
	case err == nil:
		fmt.Println("won")
	case errors.Is(err, store.ErrLocked):
		fmt.Println("locked")
	default:
		fmt.Println("error:", err)
		return 1
	}
	bufio.NewReader(os.Stdin).ReadString('\n') // hold until the parent lets go
	if lease != nil {
		lease.Release(ctx)
	}
	return 0
}

func appendHelper(dsn, runID string) int {
	ctx := context.Background()
	s, err := store.Open(ctx, dsn)
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	chunk := strings.Repeat("0123456789abcdef", 2048) // 32 KiB
	for i := 0; ; i++ {
		batch := []runbook.Event{{Type: runbook.EventStepOutput, Stream: "stdout", Text: chunk}}
		if i%3 == 0 {
			batch = append(batch, runbook.Event{Type: runbook.EventStepStarted, Step: "s"})
		}
		stored, err := s.AppendEvents(ctx, runID, batch...)
		if err != nil {
			fmt.Println("error:", err)
			return 1
		}
		fmt.Println(stored[len(stored)-1].Seq)
	}
}

// helper is this test binary started as a helper process (see TestMain).
type helper struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
}

// startHelper starts a helper on the run of the store at dsn; env adds the
// mode's own variables (envHelperGo, envHelperAppend).
func startHelper(t *testing.T, dsn, runID string, env ...string) *helper {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envHelperDSN+"="+dsn, envHelperRun+"="+runID)
	cmd.Env = append(cmd.Env, env...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive a crashed test
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &helper{cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout)}
	t.Cleanup(func() {
		h.stdin.Close()
		h.cmd.Process.Kill()
		h.cmd.Wait()
	})
	return h
}

func (h *helper) line(t *testing.T) string {
	t.Helper()
	l, err := h.out.ReadString('\n')
	if err != nil {
		t.Fatalf("helper process: %v (output %q)", err, l)
	}
	return strings.TrimSpace(l)
}
