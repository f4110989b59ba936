package store_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
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
