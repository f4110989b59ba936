// Command server benchmarks `opsbook serve` in-process and prints figures:
//
//   - API latency (p50/p99) of the run list and of one run's events with
//     100,000 runs stored on SQLite (target: p99 under 25 ms);
//   - 200 concurrent runs of a 10-step runbook on one server: all complete,
//     nothing lost (every step's events present), wall time, peak RSS.
//
// Run: go run ./bench/server [-runs 100000] [-concurrent 200] [-requests 500] [-cpuprofile cpu.out]
package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	_ "modernc.org/sqlite"

	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/secret"
	"github.com/opsbook/opsbook/internal/server"
	"github.com/opsbook/opsbook/internal/server/api"
	"github.com/opsbook/opsbook/internal/store"
)

func main() {
	nRuns := flag.Int("runs", 100_000, "runs stored for the latency benchmark")
	nEvents := flag.Int("events", 2_000, "events of the run whose events are read")
	requests := flag.Int("requests", 500, "requests per latency figure")
	eventsPerRun := flag.Int("events-per-run", 10, "events of every other stored run")
	concurrent := flag.Int("concurrent", 200, "concurrent runs of the 10-step runbook")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole benchmark to this file")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	dir, err := os.MkdirTemp("", "opsbook-bench-server")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ws := writeWorkspace(dir)

	fmt.Printf("opsbook server benchmark (SQLite, in-process HTTP over loopback)\n\n")
	latency(dir, ws, *nRuns, *nEvents, *eventsPerRun, *requests)
	concurrentRuns(dir, ws, *concurrent)
	fmt.Printf("\npeak RSS of the process: %s\n", peakRSS())
}

type bench struct {
	st  *store.Store
	srv *server.Server
	hs  *httptest.Server
	key string
}

func start(dbPath, ws string, workers int) *bench {
	ctx := context.Background()
	st, err := store.Open(ctx, dbPath)
	if err != nil {
		log.Fatal(err)
	}
	keys, _ := secret.NewKeyring("bench", bytes.Repeat([]byte{9}, secret.KeySize))
	srv, err := server.New(server.Config{Store: st, Workspace: ws, Keys: keys, Workers: workers})
	if err != nil {
		log.Fatal(err)
	}
	api.Register(srv)
	u := &store.User{Name: "bench"}
	if err := st.CreateUser(ctx, u); err != nil {
		log.Fatal(err)
	}
	st.CreateTeam(ctx, "bench")
	st.AddTeamMember(ctx, "bench", u.ID)
	st.CreateGrant(ctx, &auth.Grant{Team: "bench", Permission: auth.Admin})
	key := auth.NewAPIKey()
	if err := st.CreateAPIKey(ctx, &store.APIKey{UserID: u.ID, Name: "bench", KeyHash: auth.HashToken(key), Hint: "obk_"}); err != nil {
		log.Fatal(err)
	}
	return &bench{st: st, srv: srv, hs: httptest.NewServer(srv), key: key}
}

func (b *bench) close() {
	b.hs.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b.srv.Shutdown(ctx)
	b.st.Close()
}

func (b *bench) get(path string) (int, []byte) {
	req, _ := http.NewRequest("GET", b.hs.URL+path, nil)
	return b.do(req)
}

func (b *bench) post(path string, v any) (int, []byte) {
	buf, _ := json.Marshal(v)
	req, _ := http.NewRequest("POST", b.hs.URL+path, bytes.NewReader(buf))
	req.Header.Set("Content-Type", "application/json")
	return b.do(req)
}

// do sends req with the bench's API key and returns the status and body.
func (b *bench) do(req *http.Request) (int, []byte) {
	req.Header.Set("Authorization", "Bearer "+b.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// latency seeds nRuns runs (one with nEvents events) straight into the
// database in one transaction, then times the API.
func latency(dir, ws string, nRuns, nEvents, eventsPerRun, requests int) {
	dbPath := filepath.Join(dir, "latency.db")
	b := start(dbPath, ws, 4)
	defer b.close()
	t0 := time.Now()
	target := seed(dbPath, nRuns, nEvents, eventsPerRun, 20)
	fmt.Printf("seeded %d runs with %d events each, and %d events of one run interleaved with 20 others, in %s\n", nRuns, eventsPerRun, nEvents, time.Since(t0).Round(time.Millisecond))

	measure := func(name, path string) {
		if code, body := b.get(path); code != 200 {
			log.Fatalf("%s: %d %s", path, code, body)
		}
		var ds []time.Duration
		for i := 0; i < requests; i++ {
			t := time.Now()
			b.get(path)
			ds = append(ds, time.Since(t))
		}
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		p := func(q float64) time.Duration { return ds[int(q*float64(len(ds)-1))] }
		verdict := "ok"
		if p(0.99) > 25*time.Millisecond {
			verdict = "OVER the 25 ms target"
		}
		fmt.Printf("  %-44s p50 %7s  p99 %7s  max %7s  (%s)\n", name, p(0.5).Round(10*time.Microsecond), p(0.99).Round(10*time.Microsecond), ds[len(ds)-1].Round(10*time.Microsecond), verdict)
	}
	fmt.Printf("API latency over %d requests each, %d runs stored:\n", requests, nRuns)
	measure("GET /api/v1/runs (first page of 50)", "/api/v1/runs")
	measure("GET /api/v1/runs?environment=staging", "/api/v1/runs?environment=staging&limit=50")
	// A page deep in the list, through the cursor.
	_, body := b.get("/api/v1/runs?limit=1000")
	var page struct {
		NextCursor string `json:"next_cursor"`
	}
	json.Unmarshal(body, &page)
	measure("GET /api/v1/runs?cursor=… (page after 1000)", "/api/v1/runs?cursor="+page.NextCursor)
	measure(fmt.Sprintf("GET /api/v1/runs/{id}/events (%d events)", min(nEvents, 1000)), "/api/v1/runs/"+target+"/events")
	measure("GET /api/v1/runs/{id}/events?after=N-100", fmt.Sprintf("/api/v1/runs/%s/events?after=%d", target, nEvents-100))
	measure("GET /api/v1/runs/{id} (state replayed)", "/api/v1/runs/"+target)
	fmt.Println()
}

func seed(dbPath string, nRuns, nEvents, eventsPerRun, besideRuns int) string {
	db, err := sql.Open("sqlite", dbPath+"?_pragma=busy_timeout(10000)")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	tx, err := db.Begin()
	if err != nil {
		log.Fatal(err)
	}
	ins, err := tx.Prepare(`INSERT INTO runs (id, runbook, title, environment, snapshot, status, created_by, created_at, started_at, finished_at, last_seq)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, 0)`)
	if err != nil {
		log.Fatal(err)
	}
	envs := []string{"dev", "staging", "production"}
	rbs := []string{"ops/runbooks/ten-steps.md", "ops/runbooks/other-a.md", "ops/runbooks/other-b.md", "ops/runbooks/other-c.md"}
	base := time.Now().Add(-time.Duration(nRuns) * time.Minute)
	var last string
	ids := make([]string, 0, nRuns)
	for i := 0; i < nRuns; i++ {
		at := base.Add(time.Duration(i) * time.Minute)
		last = store.NewRunID()
		ids = append(ids, last)
		if _, err := ins.Exec(last, rbs[i%len(rbs)], "bench", envs[i%len(envs)], "sha256:bench", "succeeded", "bench", at.UnixMicro(), at.Add(time.Minute).UnixMicro()); err != nil {
			log.Fatal(err)
		}
	}
	ev, err := tx.Prepare(`INSERT INTO events (run_id, seq, at, type, step, text) VALUES ($1, $2, $3, $4, $5, $6)`)
	if err != nil {
		log.Fatal(err)
	}
	line := []byte(strings.Repeat("x", 120) + "\n")
	insert := func(run string, seq int) {
		if _, err := ev.Exec(run, seq, time.Now().UnixMicro(), "step.output", "s1", line); err != nil {
			log.Fatal(err)
		}
	}
	// Every run has a log: eventsPerRun events each, written run after
	// run. The measured run's events are interleaved with those of the
	// runs that ran beside it, as a server running several at once
	// writes them.
	seqs := map[string]int{}
	for i, id := range ids[:len(ids)-1] {
		if i >= len(ids)-1-besideRuns {
			continue // the runs beside the measured one, below
		}
		for s := 1; s <= eventsPerRun; s++ {
			insert(id, s)
		}
		seqs[id] = eventsPerRun
	}
	beside := ids[max(0, len(ids)-1-besideRuns) : len(ids)-1]
	for s := 1; s <= nEvents; s++ {
		insert(last, s)
		if len(beside) > 0 {
			id := beside[s%len(beside)]
			seqs[id]++
			insert(id, seqs[id])
		}
	}
	for id, n := range seqs {
		if _, err := tx.Exec(`UPDATE runs SET last_seq = $1 WHERE id = $2`, n, id); err != nil {
			log.Fatal(err)
		}
	}
	if _, err := tx.Exec(`UPDATE runs SET last_seq = $1 WHERE id = $2`, nEvents, last); err != nil {
		log.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		log.Fatal(err)
	}
	return last
}

// concurrentRuns measures the cost of a step on the server alone and
// under concurrency: first one run of the 10-step runbook at a time (ten
// times), then n runs at once. A step's cost is CPU time (the server's and
// its step processes') per step, which other load on the machine changes
// far less than wall time; the target is the concurrent figure
// within 2x of the single one. Every step of every run must be recorded.
func concurrentRuns(dir, ws string, n int) {
	b := start(filepath.Join(dir, "concurrent.db"), ws, n)
	defer b.close()
	var single batch
	for range 10 {
		single.add(b.runBatch(1))
	}
	many := b.runBatch(n)
	fmt.Printf("runs of a 10-step runbook (steps: sh -c 'echo step'):\n")
	for _, r := range []struct {
		name string
		b    batch
	}{{"1 at a time (10 runs)", single}, {fmt.Sprintf("%d at once", n), many}} {
		fmt.Printf("  %-22s %5d steps  accepted in %8s  finished in %8s  %6.0f steps/s  CPU %5.2f ms/step  succeeded %d/%d  missing step or output: %d\n",
			r.name, r.b.steps, r.b.accepted.Round(time.Millisecond), r.b.wall.Round(time.Millisecond), float64(r.b.steps)/r.b.wall.Seconds(),
			r.b.cpuPerStep(), r.b.succeeded, r.b.runs, r.b.lost)
	}
	ratio := many.cpuPerStep() / single.cpuPerStep()
	verdict := "ok"
	if ratio > 2 {
		verdict = "OVER the 2x target"
	}
	fmt.Printf("  CPU per step at %d at once / 1 at a time: %.2fx (%s)\n", n, ratio, verdict)
}

// batch is what runBatch measured.
type batch struct {
	runs, steps, succeeded, lost int
	accepted, wall, cpu          time.Duration
}

func (a *batch) add(o batch) {
	a.runs += o.runs
	a.steps += o.steps
	a.succeeded += o.succeeded
	a.lost += o.lost
	a.accepted += o.accepted
	a.wall += o.wall
	a.cpu += o.cpu
}

func (a batch) cpuPerStep() float64 {
	return float64(a.cpu) / float64(time.Millisecond) / float64(a.steps)
}

// cpuTime is the CPU time used so far by this process and its waited-for
// children (the steps' processes).
func cpuTime() time.Duration {
	var self, kids syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &kids)
	tv := func(t syscall.Timeval) time.Duration { return time.Duration(t.Nano()) }
	return tv(self.Utime) + tv(self.Stime) + tv(kids.Utime) + tv(kids.Stime)
}

// runBatch starts n runs of the 10-step runbook at once, waits for all of
// them, and checks that every step of every run is recorded.
func (b *bench) runBatch(n int) batch {
	cpu0 := cpuTime()
	t0 := time.Now()
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			code, body := b.post("/api/v1/runs", map[string]any{"runbook": "ops/runbooks/ten-steps.md", "environment": "staging", "snapshot": "current"})
			if code != 201 {
				log.Fatalf("start run: %d %s", code, body)
			}
			var r runbook.Run
			json.Unmarshal(body, &r)
			ids[i] = r.ID
		}(i)
	}
	wg.Wait()
	res := batch{runs: n, steps: n * 10, accepted: time.Since(t0)}
	ctx := context.Background()
	for {
		runs, err := b.st.ListRuns(ctx, store.RunFilter{Status: []runbook.RunStatus{runbook.RunPending, runbook.RunRunning, runbook.RunWaiting}, Limit: 1})
		if err != nil {
			log.Fatal(err)
		}
		if len(runs) == 0 {
			break
		}
		if time.Since(t0) > 10*time.Minute {
			log.Fatal("runs did not finish in 10 minutes")
		}
		// Polling is the bench's own cost: about one poll per step either way.
		time.Sleep(min(time.Duration(n)*5*time.Millisecond, 100*time.Millisecond))
	}
	res.wall = time.Since(t0)
	res.cpu = cpuTime() - cpu0
	for _, id := range ids {
		run, err := b.st.GetRun(ctx, id)
		if err != nil {
			log.Fatal(err)
		}
		if run.Status == runbook.RunSucceeded {
			res.succeeded++
		}
		evs, err := b.st.Events(ctx, id, 0, 10_000)
		if err != nil {
			log.Fatal(err)
		}
		finished, outputs := 0, 0
		for _, ev := range evs {
			switch ev.Type {
			case runbook.EventStepFinished:
				finished++
			case runbook.EventStepOutput:
				outputs++
			}
		}
		if finished != 10 || outputs < 10 {
			res.lost++
		}
	}
	return res
}

func writeWorkspace(dir string) string {
	ws := filepath.Join(dir, "ws")
	os.MkdirAll(filepath.Join(ws, "ops", "runbooks"), 0o755)
	os.WriteFile(filepath.Join(ws, "opsbook.yaml"), []byte("name: bench\nenvironments:\n  - name: dev\n  - name: staging\n  - name: production\n"), 0o644)
	var sb strings.Builder
	sb.WriteString("---\nkind: runbook\ntitle: Ten steps\n---\n\n# Ten steps\n\n## Steps\n\n")
	for i := 1; i <= 10; i++ {
		fmt.Fprintf(&sb, "### Step %d\n\n```sh {id=s%d}\necho step %d of $OPSBOOK_RUN_ID\n```\n\n", i, i, i)
	}
	os.WriteFile(filepath.Join(ws, "ops", "runbooks", "ten-steps.md"), []byte(sb.String()), 0o644)
	return ws
}

func peakRSS() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			return strings.TrimSpace(strings.TrimPrefix(line, "VmHWM:"))
		}
	}
	return "unknown"
}
