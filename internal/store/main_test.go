package store_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

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
)

func TestMain(m *testing.M) {
	if dsn := os.Getenv(envHelperDSN); dsn != "" {
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
