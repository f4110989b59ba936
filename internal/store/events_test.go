package store_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/store"
	"github.com/opsbook/opsbook/internal/store/storetest"
)

func TestEventsRoundTrip(t *testing.T) {
	storetest.ForEachDialect(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		run := mustCreate(t, s, runbook.Run{})
		at := time.Date(2026, 2, 3, 4, 5, 6, 7000, time.UTC)
		in := []runbook.Event{
			{Type: runbook.EventRunStarted, Time: at, Text: "Restart", Data: map[string]string{"env": "prod", "user": "alice"}},
			{Type: runbook.EventStepStarted, Step: "drain", Host: "web-1", Attempt: 2},
			// Output need not be UTF-8 and may hold NUL bytes.
			{Type: runbook.EventStepOutput, Step: "drain", Host: "web-1", Stream: "stdout", Text: "ok\x00\xff\xfe\n値\r\n"},
			{Type: runbook.EventStepOutput, Step: "drain", Stream: "stderr", Text: ""},
			{Type: runbook.EventGateDecided, Step: "go", Actor: "bob", Text: "looks fine", Data: map[string]string{"decision": "go", "q": "\"\\\u0000"}},
		}
		stored, err := s.AppendEvents(ctx, run.ID, in...)
		if err != nil {
			t.Fatal(err)
		}
		for i := range stored {
			if stored[i].Seq != int64(i+1) || stored[i].RunID != run.ID || stored[i].Time.IsZero() {
				t.Errorf("stored event %d: seq %d run %q time %v; want seq %d of %s with a time",
					i, stored[i].Seq, stored[i].RunID, stored[i].Time, i+1, run.ID)
			}
		}
		if !stored[0].Time.Equal(at) {
			t.Errorf("given time %v became %v", at, stored[0].Time)
		}
		got, err := s.Events(ctx, run.ID, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, stored) {
			t.Errorf("Events =\n%+v\nwant what AppendEvents returned\n%+v", got, stored)
		}
		if last, err := s.LastSeq(ctx, run.ID); err != nil || last != 5 {
			t.Errorf("LastSeq = %d, %v; want 5", last, err)
		}
	})
}

func TestEventsPaging(t *testing.T) {
	storetest.ForEachDialect(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		run := mustCreate(t, s, runbook.Run{})
		other := mustCreate(t, s, runbook.Run{})
		for i := range 25 {
			ev := runbook.Event{Type: runbook.EventStepOutput, Stream: "stdout", Text: fmt.Sprint(i + 1)}
			if _, err := s.AppendEvents(ctx, run.ID, ev); err != nil {
				t.Fatal(err)
			}
			if _, err := s.AppendEvents(ctx, other.ID, ev, ev); err != nil {
				t.Fatal(err)
			}
		}
		tests := []struct {
			after    int64
			limit    int
			from, to int64 // expected seqs, inclusive; to < from for none
		}{
			{0, 10, 1, 10},
			{10, 10, 11, 20},
			{20, 10, 21, 25},
			{25, 10, 1, 0},
			{0, 0, 1, 25}, // default page
			{24, -1, 25, 25},
		}
		for _, tt := range tests {
			t.Run(fmt.Sprintf("after %d limit %d", tt.after, tt.limit), func(t *testing.T) {
				got, err := s.Events(ctx, run.ID, tt.after, tt.limit)
				if err != nil {
					t.Fatal(err)
				}
				var seqs, want []int64
				for _, ev := range got {
					seqs = append(seqs, ev.Seq)
					if ev.Text != fmt.Sprint(ev.Seq) {
						t.Errorf("event %d has text %q, from another run?", ev.Seq, ev.Text)
					}
				}
				for q := tt.from; q <= tt.to; q++ {
					want = append(want, q)
				}
				if !reflect.DeepEqual(seqs, want) {
					t.Errorf("seqs %v, want %v", seqs, want)
				}
			})
		}
		t.Run("AllEvents", func(t *testing.T) {
			n := 0
			for ev, err := range s.AllEvents(ctx, other.ID, 3) {
				if err != nil {
					t.Fatal(err)
				}
				n++
				if ev.Seq != int64(n+3) {
					t.Fatalf("event %d has seq %d", n, ev.Seq)
				}
			}
			if n != 47 {
				t.Errorf("AllEvents after 3 gave %d events, want 47", n)
			}
		})
		t.Run("unknown run", func(t *testing.T) {
			got, err := s.Events(ctx, "r-nothere", 0, 10)
			if err != nil || len(got) != 0 {
				t.Errorf("Events of an unknown run = %v, %v; want none", got, err)
			}
			if _, err := s.AppendEvents(ctx, "r-nothere", runbook.Event{Type: runbook.EventRunStarted}); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("AppendEvents to an unknown run: %v, want ErrNotFound", err)
			}
		})
	})
}

// A batch is written whole or not at all: the bad event comes after good
// ones, which must be rolled back, and the sequence must not advance.
func TestAppendEventsIsAtomic(t *testing.T) {
	storetest.ForEachDialect(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		good := runbook.Event{Type: runbook.EventStepOutput, Stream: "stdout", Text: "fine"}
		tests := []struct {
			name string
			bad  runbook.Event
		}{
			{"no type", runbook.Event{Text: "typeless"}},
			{"other run", runbook.Event{Type: runbook.EventStepStarted, RunID: "r-other"}},
			{"bad stream", runbook.Event{Type: runbook.EventStepOutput, Stream: "stdin"}},
			{"negative attempt", runbook.Event{Type: runbook.EventStepRetry, Attempt: -1}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				run := mustCreate(t, s, runbook.Run{})
				if _, err := s.AppendEvents(ctx, run.ID, good); err != nil {
					t.Fatal(err)
				}
				_, err := s.AppendEvents(ctx, run.ID, good, good, tt.bad, good)
				if !errors.Is(err, store.ErrInvalid) {
					t.Fatalf("AppendEvents with a bad event: %v, want ErrInvalid", err)
				}
				evs, err := s.Events(ctx, run.ID, 0, 100)
				if err != nil {
					t.Fatal(err)
				}
				if len(evs) != 1 {
					t.Errorf("after the failed batch the log has %d events, want the 1 from before", len(evs))
				}
				next, err := s.AppendEvents(ctx, run.ID, good)
				if err != nil {
					t.Fatal(err)
				}
				if next[0].Seq != 2 {
					t.Errorf("next event got seq %d, want 2: the failed batch must not use up numbers", next[0].Seq)
				}
			})
		}
	})
}

// Concurrent appenders to one run get a dense sequence, and each batch's
// events stay together in order.
func TestAppendEventsConcurrent(t *testing.T) {
	storetest.ForEachDialect(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		run := mustCreate(t, s, runbook.Run{})
		const writers, batches = 8, 20
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for b := range batches {
					size := 1 + (w+b)%3
					batch := make([]runbook.Event, size)
					for i := range batch {
						batch[i] = runbook.Event{Type: runbook.EventStepOutput, Stream: "stdout",
							Text: fmt.Sprintf("%d/%d/%d/%d", w, b, i, size)}
					}
					if _, err := s.AppendEvents(ctx, run.ID, batch...); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		var all []runbook.Event
		for ev, err := range s.AllEvents(ctx, run.ID, 0) {
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, ev)
		}
		want := 0
		for w := range writers {
			for b := range batches {
				want += 1 + (w+b)%3
			}
		}
		if len(all) != want {
			t.Fatalf("%d events stored, want %d", len(all), want)
		}
		for i := 0; i < len(all); {
			if all[i].Seq != int64(i+1) {
				t.Fatalf("event %d has seq %d: not dense", i+1, all[i].Seq)
			}
			var w, b, k, size int
			fmt.Sscanf(all[i].Text, "%d/%d/%d/%d", &w, &b, &k, &size)
			for j := range size {
				if i+j >= len(all) || all[i+j].Text != fmt.Sprintf("%d/%d/%d/%d", w, b, j, size) {
					t.Fatalf("batch %d/%d is not contiguous at seq %d", w, b, i+1)
				}
			}
			i += size
		}
	})
}

// The first appends of a fresh store come all at once, more of them than
// the pool has connections (a server resuming many runs): none waits
// forever for the statements AppendEvents prepares on first use.
func TestFirstAppendsAtOnce(t *testing.T) {
	storetest.ForEachDialect(t, func(t *testing.T, s *store.Store) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var runs []runbook.Run
		for range 100 {
			runs = append(runs, mustCreate(t, s, runbook.Run{Status: runbook.RunRunning}))
		}
		start := make(chan struct{})
		var wg sync.WaitGroup
		for _, run := range runs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				if _, err := s.AppendEvents(ctx, run.ID, runbook.Event{Type: runbook.EventStepStarted, Step: "s"}); err != nil {
					t.Error(err)
				}
			}()
		}
		close(start)
		wg.Wait()
	})
}

// What is appended is on disk where FilesContaining looks, and what is not
// appended is not: the check the engine's masking tests rely on.
func TestFilesContaining(t *testing.T) {
	storetest.ForEachDialect(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		run := mustCreate(t, s, runbook.Run{})
		written := "needle-" + run.ID
		_, err := s.AppendEvents(ctx, run.ID,
			runbook.Event{Type: runbook.EventStepOutput, Stream: "stdout", Text: "before " + written + " after"},
			runbook.Event{Type: runbook.EventStepFinished, Data: map[string]string{"status": "succeeded"}})
		if err != nil {
			t.Fatal(err)
		}
		if found := storetest.FilesContaining(t, s, []byte(written)); len(found) == 0 {
			t.Errorf("%q was appended but is in no database file", written)
		}
		if found := storetest.FilesContaining(t, s, []byte("never-"+run.ID)); len(found) != 0 {
			t.Errorf("a value never written was found in %v", found)
		}
	})
}

// kill -9 of a process in the middle of appending loses nothing it was told
// was stored, and leaves no partial batch behind.
func TestAppendSurvivesKill(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			ctx := context.Background()
			dsn := storetest.DSN(t, dialect)
			s, err := store.Open(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			for round := range 5 {
				run := mustCreate(t, s, runbook.Run{Status: runbook.RunRunning})
				h := startHelper(t, dsn, run.ID, envHelperAppend+"=1")
				out := bufio.NewScanner(h.out)
				// Kill after a varying number of acknowledgements.
				acked, target := int64(0), int64(20+round*37)
				for acked < target && out.Scan() {
					if acked, err = strconv.ParseInt(out.Text(), 10, 64); err != nil {
						t.Fatalf("helper said %q", out.Text())
					}
				}
				h.cmd.Process.Kill()
				h.cmd.Wait()
				if acked < target {
					t.Fatalf("helper stopped after seq %d", acked)
				}
				last, err := s.LastSeq(ctx, run.ID)
				if err != nil {
					t.Fatal(err)
				}
				if last < acked {
					t.Fatalf("round %d: seq %d was acknowledged but the log ends at %d", round, acked, last)
				}
				n := int64(0)
				for ev, err := range s.AllEvents(ctx, run.ID, 0) {
					if err != nil {
						t.Fatal(err)
					}
					n++
					if ev.Seq != n {
						t.Fatalf("round %d: event %d has seq %d", round, n, ev.Seq)
					}
					if ev.Type == runbook.EventStepOutput && len(ev.Text) != 32<<10 {
						t.Fatalf("round %d: event %d holds %d bytes of output, want 32 KiB", round, n, len(ev.Text))
					}
				}
				if n != last {
					t.Fatalf("round %d: %d events stored, last seq %d", round, n, last)
				}
			}
		})
	}
}

// Two processes appending to one run on one SQLite file: nothing in
// memory orders them, only the database's write lock, which every append
// takes before it reads the last seq. A seq read outside that lock would
// be handed out twice and the second commit would fail on the key.
func TestAppendEventsTwoProcessesSQLite(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "opsbook.db")
	var stores [2]*store.Store
	for i := range stores {
		s, err := store.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		stores[i] = s
	}
	run := mustCreate(t, stores[0], runbook.Run{})
	const writers, appends = 4, 25
	var wg sync.WaitGroup
	errs := make(chan error, 2*writers)
	for _, s := range stores {
		for range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range appends {
					if _, err := s.AppendEvents(ctx, run.ID, runbook.Event{Type: runbook.EventStepStarted, Step: "a"},
						runbook.Event{Type: runbook.EventStepFinished, Step: "a"}); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := 0
	for ev, err := range stores[1].AllEvents(ctx, run.ID, 0) {
		if err != nil {
			t.Fatal(err)
		}
		if seen++; ev.Seq != int64(seen) {
			t.Fatalf("event %d has seq %d: not dense", seen, ev.Seq)
		}
	}
	if want := 2 * writers * appends * 2; seen != want {
		t.Fatalf("%d events, want %d", seen, want)
	}
	if last, err := stores[0].LastSeq(ctx, run.ID); err != nil || last != int64(seen) {
		t.Errorf("LastSeq = %d, %v; want %d", last, err, seen)
	}
}

// A run whose runs.last_seq is ahead of its events (a writer that bumps
// it, as PostgreSQL's appends and earlier versions do, was there) goes on
// after it: no seq is handed out twice.
func TestAppendEventsHonoursLastSeqAhead(t *testing.T) {
	storetest.ForEachDialect(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		run := mustCreate(t, s, runbook.Run{})
		if _, err := s.AppendEvents(ctx, run.ID, runbook.Event{Type: runbook.EventRunStarted}); err != nil {
			t.Fatal(err)
		}
		if _, err := store.ExecForTest(s, ctx, `UPDATE runs SET last_seq = 7 WHERE id = $1`, run.ID); err != nil {
			t.Fatal(err)
		}
		stored, err := s.AppendEvents(ctx, run.ID, runbook.Event{Type: runbook.EventStepStarted, Step: "a"})
		if err != nil {
			t.Fatal(err)
		}
		if stored[0].Seq != 8 {
			t.Errorf("seq %d after last_seq 7, want 8", stored[0].Seq)
		}
		if last, err := s.LastSeq(ctx, run.ID); err != nil || last != 8 {
			t.Errorf("LastSeq = %d, %v; want 8", last, err)
		}
		if _, err := s.AppendEvents(ctx, "no-such-run", runbook.Event{Type: runbook.EventStepStarted}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("append to an unknown run: %v, want ErrNotFound", err)
		}
	})
}

// TestStateEventsLeaveOutputOut: deriving a run's state reads its log
// without the output's bytes (a step can print gigabytes, and the run page
// derives the state on every request), yet the state counts every byte.
// Fault class: a cheap request whose cost grows with what a step printed.
func TestStateEventsLeaveOutputOut(t *testing.T) {
	storetest.ForEachDialect(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		run := mustCreate(t, s, runbook.Run{})
		big := strings.Repeat("x", 1<<20)
		evs := []runbook.Event{
			{Type: runbook.EventStepStarted, Step: "a", Attempt: 1, Text: "title"},
			{Type: runbook.EventStepOutput, Step: "a", Attempt: 1, Stream: "stdout", Text: big},
			{Type: runbook.EventStepOutput, Step: "a", Attempt: 1, Stream: "stderr", Text: "oops\n"},
			{Type: runbook.EventStepFinished, Step: "a", Attempt: 1, Text: "done", Data: map[string]string{"status": "succeeded"}},
		}
		if _, err := s.AppendEvents(ctx, run.ID, evs...); err != nil {
			t.Fatal(err)
		}
		full, lean := runbook.NewRunState(run.ID), runbook.NewRunState(run.ID)
		for ev, err := range s.AllEvents(ctx, run.ID, 0) {
			if err != nil {
				t.Fatal(err)
			}
			full.Apply(ev)
		}
		var got []runbook.Event
		for ev, err := range s.StateEvents(ctx, run.ID, 0) {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, ev)
			lean.Apply(ev)
		}
		if len(got) != 4 || got[1].Text != "" || got[1].Size != int64(len(big)) || got[2].Size != 5 || got[0].Text != "title" || got[3].Text != "done" || got[0].Size != 0 {
			t.Fatalf("state events: %+v", summarize(got))
		}
		if a, b := full.Step("a").OutputSize, lean.Step("a").OutputSize; a != int64(len(big))+5 || b != a {
			t.Fatalf("output size from the full log %d, from the state events %d", a, b)
		}
	})
}

func summarize(evs []runbook.Event) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, fmt.Sprintf("%d %s text=%d size=%d", ev.Seq, ev.Type, len(ev.Text), ev.Size))
	}
	return out
}
