package store_test

import (
	"context"
	"iter"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/store"
	"github.com/opsbook/opsbook/internal/store/storetest"
)

// outputChunk is the size of a step.output event as the engine batches it.
const outputChunk = 64 << 10

// BenchmarkAppendOutput records a step's output, one durable event per
// 64 KiB chunk. For the 1 GB figure of issue 4:
//
//	go test -run '^$' -bench AppendOutput/sqlite -benchtime 16384x ./internal/store/
//
// MB/s is the recording throughput; peak-RSS-MB is the test process's
// high-water mark (VmHWM).
func BenchmarkAppendOutput(b *testing.B) {
	for _, dialect := range storetest.Dialects {
		b.Run(dialect, func(b *testing.B) {
			s := storetest.Open(b, dialect)
			ctx := context.Background()
			run := benchRun(b, s)
			// Printable pseudo-random text: PostgreSQL compresses large
			// values, and real output does not compress to nothing.
			rng := rand.New(rand.NewPCG(1, 2))
			chunk := make([]byte, outputChunk)
			for i := range chunk {
				chunk[i] = byte(' ' + rng.IntN(95))
				if i%100 == 99 {
					chunk[i] = '\n'
				}
			}
			text := string(chunk)
			b.SetBytes(outputChunk)
			b.ResetTimer()
			for b.Loop() {
				_, err := s.AppendEvents(ctx, run.ID, runbook.Event{
					Type: runbook.EventStepOutput, Step: "dump", Stream: "stdout", Text: text,
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if hwm := peakRSSMB(); hwm > 0 {
				b.ReportMetric(hwm, "peak-RSS-MB")
			}
		})
	}
}

// BenchmarkAppendStepEvents is the per-step cost of durable recording: the
// events around a short command, one commit each as the engine writes them.
func BenchmarkAppendStepEvents(b *testing.B) {
	for _, dialect := range storetest.Dialects {
		b.Run(dialect, func(b *testing.B) {
			s := storetest.Open(b, dialect)
			ctx := context.Background()
			run := benchRun(b, s)
			for b.Loop() {
				for _, ev := range []runbook.Event{
					{Type: runbook.EventStepStarted, Step: "s", Attempt: 1},
					{Type: runbook.EventStepOutput, Step: "s", Stream: "stdout", Text: "ok\n"},
					{Type: runbook.EventStepFinished, Step: "s", Data: map[string]string{"status": "succeeded", "exit_code": "0"}},
				} {
					if _, err := s.AppendEvents(ctx, run.ID, ev); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// benchRun creates a running run to append to.
func benchRun(b *testing.B, s *store.Store) runbook.Run {
	b.Helper()
	run := runbook.Run{Runbook: "bench.md", Status: runbook.RunRunning}
	if err := s.CreateRun(context.Background(), &run); err != nil {
		b.Fatal(err)
	}
	return run
}

func peakRSSMB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// BenchmarkAppendConcurrentRuns is many runs recording at once, as on a
// busy server: 200 runs, each appending the events of 10 steps.
func BenchmarkAppendConcurrentRuns(b *testing.B) {
	for _, dialect := range storetest.Dialects {
		b.Run(dialect, func(b *testing.B) {
			s := storetest.Open(b, dialect)
			ctx := context.Background()
			for b.Loop() {
				var wg sync.WaitGroup
				for range 200 {
					run := benchRun(b, s)
					wg.Add(1)
					go func() {
						defer wg.Done()
						for range 10 {
							for _, ev := range []runbook.Event{
								{Type: runbook.EventStepStarted, Step: "s", Attempt: 1},
								{Type: runbook.EventStepOutput, Step: "s", Stream: "stdout", Text: "ok\n"},
								{Type: runbook.EventStepFinished, Step: "s", Data: map[string]string{"status": "succeeded"}},
							} {
								if _, err := s.AppendEvents(ctx, run.ID, ev); err != nil {
									b.Error(err)
									return
								}
							}
						}
					}()
				}
				wg.Wait()
			}
		})
	}
}

// BenchmarkRunState derives the state of a run whose step printed 64 MiB
// (1,024 output events of 64 KiB) as the run page does on every request:
// from the whole log, and from StateEvents, which leaves the output's
// bytes in the database.
//
//	go test -run '^$' -bench RunState ./internal/store/
func BenchmarkRunState(b *testing.B) {
	for _, dialect := range storetest.Dialects {
		s := storetest.Open(b, dialect)
		ctx := context.Background()
		run := benchRun(b, s)
		text := strings.Repeat(strings.Repeat("x", 99)+"\n", outputChunk/100)
		for range 1024 {
			if _, err := s.AppendEvents(ctx, run.ID, runbook.Event{Type: runbook.EventStepOutput, Step: "dump", Stream: "stdout", Text: text}); err != nil {
				b.Fatal(err)
			}
		}
		for _, read := range []struct {
			name string
			all  func(context.Context, string, int64) iter.Seq2[runbook.Event, error]
		}{{"all-events", s.AllEvents}, {"state-events", s.StateEvents}} {
			b.Run(dialect+"/"+read.name, func(b *testing.B) {
				for b.Loop() {
					st := runbook.NewRunState(run.ID)
					for ev, err := range read.all(ctx, run.ID, 0) {
						if err != nil {
							b.Fatal(err)
						}
						st.Apply(ev)
					}
					if got := st.Step("dump").OutputSize; got != int64(1024*len(text)) {
						b.Fatalf("output size %d", got)
					}
				}
			})
		}
	}
}
