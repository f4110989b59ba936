package engine

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/store"
)

// smallDisk mounts a 4 MiB tmpfs for the run store: a real file system
// that really fills up. It needs the right to mount (root here); elsewhere
// the test is skipped.
func smallDisk(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "small")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small tmpfs to fill (%v: %s); the disk-full fault needs mount rights", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// smallDiskHarness is a harness whose run store is on a small tmpfs (see
// smallDisk), retrying failed records for retry.
func smallDiskHarness(t *testing.T, retry time.Duration) (*harness, string) {
	t.Helper()
	mnt := smallDisk(t)
	st, err := store.Open(context.Background(), filepath.Join(mnt, "opsbook.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h := &harness{t: t, dir: t.TempDir(), st: st}
	h.eng = New(Config{Store: st, PollInterval: 20 * time.Millisecond, FlushInterval: 20 * time.Millisecond, RecordRetry: retry, LeaseTTL: time.Second})
	return h, mnt
}

// fill writes a file until the file system is full (ENOSPC).
func fill(t *testing.T, path string) {
	f, err := os.Create(path)
	if err != nil {
		return // already full
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			return
		}
	}
}

// Fault class: the disk holding the run store fills up while a step runs
// (its output cannot be recorded). The run used to stop with the step still
// "running", the run "running" or "failed", and no reason anywhere.
func TestDiskFullMidStep(t *testing.T) {
	for _, tt := range []struct {
		name    string
		freeing bool // the operator frees space while opsbook retries
	}{
		{"space comes back: the reason is recorded", true},
		{"space never comes back: the error explains and resume continues", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			retry := 300 * time.Millisecond
			if tt.freeing {
				retry = 20 * time.Second
			}
			h, mnt := smallDiskHarness(t, retry)
			ctx := context.Background()
			d := h.doc("rb.md", "", step("Big", "sh {id=big}", `sleep 0.2; if [ "$OPSBOOK_ATTEMPT" = 1 ]; then head -c 3000000 /dev/urandom | base64; fi; echo done`)+
				step("After", "sh {id=after}", "echo after >> order"))
			p := h.plan(d, nil)
			run, err := h.eng.Start(ctx, p, StartOptions{})
			if err != nil {
				t.Fatal(err)
			}
			filler := filepath.Join(mnt, "filler")
			status, err := h.eng.Execute(ctx, run.ID, p, ExecOptions{Observe: func(ev runbook.Event) {
				if ev.Type == runbook.EventStepStarted && ev.Step == "big" {
					fill(t, filler)
					if tt.freeing {
						time.AfterFunc(time.Second, func() { os.Remove(filler) })
					}
				}
			}})
			if h.read("order") != "" {
				t.Fatalf("the next step ran unrecorded")
			}
			if tt.freeing {
				if err != nil || status != runbook.RunFailed {
					t.Fatalf("Execute = %s, %v; want failed with the reason recorded", status, err)
				}
				s, _ := h.eng.State(ctx, run.ID)
				big := s.Step("big")
				if s.Status != runbook.RunFailed || big.Status != runbook.StepFailed || !strings.Contains(big.Error, "disk is full") {
					t.Fatalf("run %s, step big %s %q", s.Status, big.Status, big.Error)
				}
				if r, _ := h.st.GetRun(ctx, run.ID); r.Status != runbook.RunFailed {
					t.Fatalf("run index says %s", r.Status)
				}
				return
			}
			var ue *UnrecordedError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), "disk is full") || !strings.Contains(err.Error(), "step big running") ||
				!strings.Contains(err.Error(), "opsbook resume "+run.ID) {
				t.Fatalf("Execute = %s, %v; want an UnrecordedError that says what the log holds and what to do", status, err)
			}
			os.Remove(filler)
			// The lease could not be released on the full disk either: it
			// expires, as it would after the process exited.
			for range 50 {
				status, err = h.eng.Resume(ctx, run.ID, p, ExecOptions{RetryInterrupted: runbook.ChoiceRetry})
				if !errors.Is(err, store.ErrLocked) {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if err != nil || status != runbook.RunSucceeded {
				t.Fatalf("resume after freeing space: %s %v", status, err)
			}
			s, _ := h.eng.State(ctx, run.ID)
			if len(s.Interrupt) != 1 || !strings.Contains(s.Interrupt[0].Text, "step big was running") {
				t.Fatalf("the resume does not explain the interruption: %+v", s.Interrupt)
			}
		})
	}
}
