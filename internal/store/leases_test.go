package store_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/store"
	"github.com/opsbook/opsbook/internal/store/storetest"
)

func TestLeaseLifecycle(t *testing.T) {
	storetest.ForEachDialect(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		run := mustCreate(t, s, runbook.Run{})

		if alive, err := s.RunOwnerAlive(ctx, run.ID); err != nil || alive {
			t.Fatalf("RunOwnerAlive without a lease = %v, %v; want false", alive, err)
		}
		a, err := s.AcquireRun(ctx, run.ID, "server-a", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if alive, err := s.RunOwnerAlive(ctx, run.ID); err != nil || !alive {
			t.Fatalf("RunOwnerAlive while held = %v, %v; want true", alive, err)
		}
		for _, owner := range []string{"server-b", "server-a"} { // a lease is held once, also by the same name
			_, err := s.AcquireRun(ctx, run.ID, owner, time.Hour)
			var locked *store.LockedError
			if !errors.As(err, &locked) || !errors.Is(err, store.ErrLocked) || locked.Owner != "server-a" {
				t.Fatalf("AcquireRun by %s while server-a holds it: %v; want a LockedError naming server-a", owner, err)
			}
		}
		before := a.Expires()
		time.Sleep(2 * time.Millisecond)
		if err := a.Renew(ctx); err != nil {
			t.Fatal(err)
		}
		if !a.Expires().After(before) {
			t.Errorf("Renew did not move the expiry: %v then %v", before, a.Expires())
		}
		if err := a.Release(ctx); err != nil {
			t.Fatal(err)
		}
		if err := a.Release(ctx); err != nil {
			t.Errorf("second Release: %v, want nil", err)
		}
		if alive, _ := s.RunOwnerAlive(ctx, run.ID); alive {
			t.Error("RunOwnerAlive after Release = true")
		}
		b, err := s.AcquireRun(ctx, run.ID, "server-b", time.Hour)
		if err != nil {
			t.Fatalf("AcquireRun after Release: %v", err)
		}
		if err := a.Renew(ctx); !errors.Is(err, store.ErrLocked) {
			t.Errorf("Renew of a released lease: %v, want ErrLocked", err)
		}
		if err := a.Release(ctx); err != nil {
			t.Fatal(err)
		}
		if alive, _ := s.RunOwnerAlive(ctx, run.ID); !alive {
			t.Error("a stale Release removed the successor's lease")
		}
		b.Release(ctx)

		if _, err := s.AcquireRun(ctx, "r-nothere", "server-a", time.Hour); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("AcquireRun of an unknown run: %v, want ErrNotFound", err)
		}
		if _, err := s.AcquireRun(ctx, run.ID, "server-a", 0); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("AcquireRun with ttl 0: %v, want ErrInvalid", err)
		}
	})
}

func TestLeaseExpires(t *testing.T) {
	storetest.ForEachDialect(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		run := mustCreate(t, s, runbook.Run{})
		old, err := s.AcquireRun(ctx, run.ID, "server-a", 50*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(80 * time.Millisecond)
		if alive, _ := s.RunOwnerAlive(ctx, run.ID); alive {
			t.Error("RunOwnerAlive after expiry = true")
		}
		if _, err := s.AcquireRun(ctx, run.ID, "server-b", time.Hour); err != nil {
			t.Fatalf("AcquireRun of an expired lease: %v", err)
		}
		if err := old.Renew(ctx); !errors.Is(err, store.ErrLocked) {
			t.Errorf("Renew after takeover: %v, want ErrLocked", err)
		}
	})
}

// Owners of this host are judged by their process: a dead pid, or a live
// pid that started at another time (reused), frees the lease at once,
// however long its ttl. Where the pid cannot be checked (another host,
// boot or pid namespace), the lease holds until it expires.
func TestLeaseOfDeadLocalProcess(t *testing.T) {
	me := store.ProcessOwner()
	parts := strings.Split(me, ":")
	host, pid, start, space := parts[0], parts[1], parts[2], parts[3]
	boot, pidns, _ := strings.Cut(space, ".")
	tests := []struct {
		name  string
		owner string
		alive bool
	}{
		{"this process", me, true},
		{"pid reused", strings.Join([]string{host, pid, start + "1", space}, ":"), false},
		{"no such pid", strings.Join([]string{host, "999999999", start, space}, ":"), false},
		{"another boot", strings.Join([]string{host, "999999999", start, "0123456789abcdef." + pidns}, ":"), true},
		{"another pid namespace", strings.Join([]string{host, "999999999", start, boot + ".1"}, ":"), true},
		{"another host", strings.Join([]string{"elsewhere.example", "999999999", start, space}, ":"), true},
		{"not a process owner", "server-a", true},
	}
	storetest.ForEachDialect(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				run := mustCreate(t, s, runbook.Run{Status: runbook.RunRunning})
				if _, err := s.AcquireRun(ctx, run.ID, tt.owner, time.Hour); err != nil {
					t.Fatal(err)
				}
				alive, err := s.RunOwnerAlive(ctx, run.ID)
				if err != nil || alive != tt.alive {
					t.Fatalf("RunOwnerAlive = %v, %v; want %v", alive, err, tt.alive)
				}
				_, err = s.AcquireRun(ctx, run.ID, "server-b", time.Hour)
				if tt.alive != errors.Is(err, store.ErrLocked) {
					t.Fatalf("AcquireRun over %s: %v; want locked %v", tt.owner, err, tt.alive)
				}
			})
		}
	})
}

func TestOrphanedRuns(t *testing.T) {
	storetest.ForEachDialect(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		held := mustCreate(t, s, runbook.Run{Status: runbook.RunRunning})
		unheld := mustCreate(t, s, runbook.Run{Status: runbook.RunRunning})
		waitingExpired := mustCreate(t, s, runbook.Run{Status: runbook.RunWaiting})
		mustCreate(t, s, runbook.Run{Status: runbook.RunPending})
		mustCreate(t, s, runbook.Run{Status: runbook.RunSucceeded})
		if _, err := s.AcquireRun(ctx, held.ID, "server-a", time.Hour); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AcquireRun(ctx, waitingExpired.ID, "server-a", time.Millisecond); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
		got, err := s.OrphanedRuns(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, r := range got {
			ids = append(ids, r.ID)
		}
		want := []string{waitingExpired.ID, unheld.ID}
		if strings.Join(ids, " ") != strings.Join(want, " ") {
			t.Errorf("OrphanedRuns = %v, want %v", ids, want)
		}
	})
}

func TestAcquireRaceGoroutines(t *testing.T) {
	storetest.ForEachDialect(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		for round := range 5 {
			run := mustCreate(t, s, runbook.Run{})
			if round%2 == 1 { // also race over taking an expired lease
				if _, err := s.AcquireRun(ctx, run.ID, "gone", time.Millisecond); err != nil {
					t.Fatal(err)
				}
				time.Sleep(3 * time.Millisecond)
			}
			const racers = 8
			var wg sync.WaitGroup
			var mu sync.Mutex
			won, locked := 0, 0
			start := make(chan struct{})
			for i := range racers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					_, err := s.AcquireRun(ctx, run.ID, "racer-"+string(rune('a'+i)), time.Hour)
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil:
						won++
					case errors.Is(err, store.ErrLocked):
						locked++
					default:
						t.Error(err)
					}
				}()
			}
			close(start)
			wg.Wait()
			if won != 1 || locked != racers-1 {
				t.Fatalf("round %d: %d won, %d locked; want exactly one winner", round, won, locked)
			}
		}
	})
}

// Processes racing for one run: exactly one wins.
func TestAcquireRaceProcesses(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			dsn := storetest.DSN(t, dialect)
			s, err := store.Open(context.Background(), dsn) // migrates before the helpers start
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			for round := range 3 {
				run := mustCreate(t, s, runbook.Run{})
				goFile := filepath.Join(t.TempDir(), "go")
				const racers = 3
				var hs []*helper
				for range racers {
					h := startHelper(t, dsn, run.ID, envHelperGo+"="+goFile)
					if l := h.line(t); l != "ready" {
						t.Fatalf("helper said %q, want ready", l)
					}
					hs = append(hs, h)
				}
				if err := os.WriteFile(goFile, nil, 0o600); err != nil {
					t.Fatal(err)
				}
				won := 0
				for _, h := range hs {
					switch l := h.line(t); l {
					case "won":
						won++
					case "locked":
					default:
						t.Fatalf("helper said %q", l)
					}
				}
				if won != 1 {
					t.Fatalf("round %d: %d of %d processes won the run, want exactly 1", round, won, racers)
				}
				for _, h := range hs {
					h.stdin.Close()
					h.cmd.Wait()
				}
			}
		})
	}
}

// kill -9 of the holder frees the run at once, though its lease has an
// hour left: `opsbook runs` can show it interrupted and resume can take it.
func TestLeaseHolderKilled(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			ctx := context.Background()
			dsn := storetest.DSN(t, dialect)
			s, err := store.Open(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			run := mustCreate(t, s, runbook.Run{Status: runbook.RunRunning})
			h := startHelper(t, dsn, run.ID)
			if l := h.line(t); l != "ready" {
				t.Fatalf("helper said %q", l)
			}
			if l := h.line(t); l != "won" {
				t.Fatalf("helper said %q, want won", l)
			}
			if alive, err := s.RunOwnerAlive(ctx, run.ID); err != nil || !alive {
				t.Fatalf("RunOwnerAlive while the helper holds it = %v, %v", alive, err)
			}
			if _, err := s.AcquireRun(ctx, run.ID, store.ProcessOwner(), time.Minute); !errors.Is(err, store.ErrLocked) {
				t.Fatalf("AcquireRun while the helper holds it: %v, want ErrLocked", err)
			}
			h.cmd.Process.Kill()
			h.cmd.Wait()
			if alive, err := s.RunOwnerAlive(ctx, run.ID); err != nil || alive {
				t.Fatalf("RunOwnerAlive after kill -9 = %v, %v; want false", alive, err)
			}
			orphans, err := s.OrphanedRuns(ctx)
			if err != nil || len(orphans) != 1 || orphans[0].ID != run.ID {
				t.Fatalf("OrphanedRuns after kill -9 = %v, %v; want the run", orphans, err)
			}
			if _, err := s.AcquireRun(ctx, run.ID, store.ProcessOwner(), time.Minute); err != nil {
				t.Fatalf("AcquireRun after kill -9: %v", err)
			}
		})
	}
}

// A process killed with kill -9 stays a zombie until its parent reaps it
// (on some machines init reaps late); its lease must free at once all the
// same, or `opsbook resume` right after a crash is refused as "being
// executed".
func TestLeaseOfZombieProcess(t *testing.T) {
	cmd := exec.Command("sleep", "100")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	start, err := store.ProcessStartTicks(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(store.ProcessOwner(), ":")
	owner := strings.Join([]string{parts[0], strconv.Itoa(cmd.Process.Pid), strconv.FormatUint(start, 10), parts[3]}, ":")
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait() // reap it at the end, not before the check
	// Wait until the kernel has made it a zombie (not reaped: we are its parent).
	for i := 0; ; i++ {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/stat")
		if err == nil && strings.Contains(string(b), ") Z ") {
			break
		}
		if i > 500 {
			t.Fatalf("child never became a zombie: %s %v", b, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	storetest.ForEachDialect(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		run := mustCreate(t, s, runbook.Run{Status: runbook.RunRunning})
		if _, err := s.AcquireRun(ctx, run.ID, owner, time.Hour); err != nil {
			t.Fatal(err)
		}
		if alive, err := s.RunOwnerAlive(ctx, run.ID); err != nil || alive {
			t.Fatalf("RunOwnerAlive of a zombie = %v, %v; want dead", alive, err)
		}
		if _, err := s.AcquireRun(ctx, run.ID, "resumer", time.Hour); err != nil {
			t.Fatalf("AcquireRun over a zombie's lease: %v", err)
		}
	})
}
