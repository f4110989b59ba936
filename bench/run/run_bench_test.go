// Package run benchmarks `opsbook run`: per-step overhead with durable
// recording against a shell loop, start-up of a one-step run, peak memory
// of a 200-step run, and recording throughput for a step printing a lot.
//
//	go test -run '^$' -bench . -benchtime 5x ./bench/run/
//	OPSBOOK_BENCH_OUTPUT_MB=1024 go test -run '^$' -bench Output -benchtime 1x ./bench/run/
//
// Figures are printed as benchmark metrics (ms/step, ms/run, MB-peak-rss,
// MB/s); no test asserts a time.
package run

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opsbook/opsbook/internal/engine"
	"github.com/opsbook/opsbook/internal/markdown"
	"github.com/opsbook/opsbook/internal/store"
)

func runbookOf(steps int, body string) string {
	var b strings.Builder
	b.WriteString("---\nkind: runbook\ntitle: Bench\n---\n\n# Bench\n\n## Steps\n\n")
	for i := range steps {
		fmt.Fprintf(&b, "### Step %d\n\n```sh {id=s%d}\n%s\n```\n\n", i, i, body)
	}
	return b.String()
}

func workspace(b *testing.B, steps int, body string) string {
	b.Helper()
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "opsbook.yaml"), []byte("name: bench\nenvironments:\n  - name: dev\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rb.md"), []byte(runbookOf(steps, body)), 0o644); err != nil {
		b.Fatal(err)
	}
	return dir
}

// BenchmarkSteps200 runs a 200-step runbook of `true` in-process on the
// real SQLite store (synchronous=FULL) and, in the same benchmark, a shell
// loop running /bin/true 200 times; overhead-ms/step is the difference per
// step.
func BenchmarkSteps200(b *testing.B) {
	const steps = 200
	dir := workspace(b, steps, "true")
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(dir, ".opsbook", "opsbook.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	doc, _, err := markdown.ParseFile(filepath.Join(dir, "rb.md"))
	if err != nil {
		b.Fatal(err)
	}
	eng := engine.New(engine.Config{Store: st})
	p := &engine.Plan{Document: doc, Workspace: dir, Runbook: "rb.md", Environment: "dev", Snapshot: "sha256:bench"}
	var engineTime, loopTime time.Duration
	for b.Loop() {
		start := time.Now()
		run, err := eng.Start(ctx, p, engine.StartOptions{Actor: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		if status, err := eng.Execute(ctx, run.ID, p, engine.ExecOptions{}); err != nil || status != "succeeded" {
			b.Fatalf("%s %v", status, err)
		}
		engineTime += time.Since(start)
		start = time.Now()
		if out, err := exec.Command("sh", "-c", "i=0; while [ $i -lt 200 ]; do /bin/true; i=$((i+1)); done").CombinedOutput(); err != nil {
			b.Fatalf("%v %s", err, out)
		}
		loopTime += time.Since(start)
	}
	n := float64(b.N * steps)
	b.ReportMetric(float64(engineTime.Microseconds())/1000/n, "engine-ms/step")
	b.ReportMetric(float64(loopTime.Microseconds())/1000/n, "loop-ms/step")
	b.ReportMetric(float64((engineTime-loopTime).Microseconds())/1000/n, "overhead-ms/step")
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

func binary(b *testing.B) string {
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "opsbook-bench-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "opsbook")
		if out, err := exec.Command("go", "build", "-o", binPath, "github.com/opsbook/opsbook/cmd/opsbook").CombinedOutput(); err != nil {
			binErr = fmt.Errorf("%v: %s", err, out)
		}
	})
	if binErr != nil {
		b.Fatal(binErr)
	}
	return binPath
}

// runBinary runs `opsbook run rb.md --env dev` and returns its wall time
// and peak RSS.
func runBinary(b *testing.B, dir string) (time.Duration, int64) {
	cmd := exec.Command(binary(b), "run", "rb.md", "--env", "dev")
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = nil, nil
	start := time.Now()
	if err := cmd.Run(); err != nil {
		b.Fatalf("opsbook run: %v", err)
	}
	wall := time.Since(start)
	return wall, cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss // KiB on Linux
}

// runBinaryLoop runs the binary in dir once per b.Loop iteration, calling
// after (when not nil) after each run, and returns the total wall time and
// the peak RSS in KiB.
func runBinaryLoop(b *testing.B, dir string, after func()) (total time.Duration, rss int64) {
	for b.Loop() {
		d, r := runBinary(b, dir)
		total += d
		rss = max(rss, r)
		if after != nil {
			after()
		}
	}
	return total, rss
}

// BenchmarkOneStepBinary is the wall time of the built binary running a
// one-step runbook, repeated like hyperfine (the store exists already).
func BenchmarkOneStepBinary(b *testing.B) {
	dir := workspace(b, 1, "true")
	runBinary(b, dir) // warm-up: creates and migrates the store
	total, rss := runBinaryLoop(b, dir, nil)
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/run")
	b.ReportMetric(float64(rss)/1024, "MB-peak-rss")
}

// BenchmarkSteps200Binary is the peak RSS of the binary running 200 steps.
func BenchmarkSteps200Binary(b *testing.B) {
	dir := workspace(b, 200, "true")
	total, rss := runBinaryLoop(b, dir, nil)
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/run")
	b.ReportMetric(float64(rss)/1024, "MB-peak-rss")
}

// BenchmarkOutput records one step printing OPSBOOK_BENCH_OUTPUT_MB
// (default 256) megabytes through the binary; the target is 1 GB
// at 100 MB/s or more with a peak RSS under 100 MB.
func BenchmarkOutput(b *testing.B) {
	mb := 256
	if v, err := strconv.Atoi(os.Getenv("OPSBOOK_BENCH_OUTPUT_MB")); err == nil && v > 0 {
		mb = v
	}
	dir := workspace(b, 1, fmt.Sprintf("head -c %d /dev/zero | tr '\\0' 'x'", mb<<20))
	total, rss := runBinaryLoop(b, dir, func() {
		os.RemoveAll(filepath.Join(dir, ".opsbook")) // keep the disk from filling up
	})
	b.ReportMetric(float64(mb*b.N)/total.Seconds(), "MB/s")
	b.ReportMetric(float64(rss)/1024, "MB-peak-rss")
}
