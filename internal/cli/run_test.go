package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/opsbook/opsbook/internal/testbin"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/store"
)

const crashSteps = 10

// crashWorkspace writes a workspace whose runbook has ten short steps; each
// appends its id to ran, prints a line and publishes an output the next
// step checks.
func crashWorkspace(t *testing.T, dir string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("---\nkind: runbook\ntitle: Crash test\n---\n\n# Crash test\n\n## Steps\n\n")
	for i := 1; i <= crashSteps; i++ {
		check := "true"
		if i > 1 {
			check = fmt.Sprintf(`[ "$OUT_%d" = v%d ]`, i-1, i-1)
		}
		fmt.Fprintf(&b, "### Step %d\n\n```sh {id=s%d idempotent outputs=OUT_%d}\n%s\necho s%d >> ran\necho \"output of s%d\"\nsleep 0.01\necho OUT_%d=v%d >> \"$OPSBOOK_OUTPUT\"\n```\n\n",
			i, i, i, check, i, i, i, i)
	}
	must(t, os.WriteFile(filepath.Join(dir, "opsbook.yaml"), []byte("name: crash\nenvironments:\n  - name: dev\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "crash.md"), []byte(b.String()), 0o644))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// runLog reads a run's events and derived state straight from the store
// file, as `opsbook show` does.
func runLog(t *testing.T, dir, runID string) ([]runbook.Event, *runbook.RunState) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(dir, ".opsbook", "opsbook.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var evs []runbook.Event
	for ev, err := range st.AllEvents(ctx, runID, 0) {
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	return evs, runbook.Replay(evs)
}

// TestKillNineAndResume kills `opsbook run` with SIGKILL at a random moment,
// over and over, and checks that `opsbook resume` always completes the run
// without running a completed step twice and without losing recorded
// output.
func TestKillNineAndResume(t *testing.T) {
	bin := testbin.Opsbook(t)
	// opsbook killed with SIGKILL cannot remove its executor's temp dir:
	// keep those inside the test's own directory.
	t.Setenv("TMPDIR", t.TempDir())
	iterations := 50
	if testing.Short() {
		iterations = 10
	}
	var killedMidRun, finishedFirst, beforeRecord int
	for it := range iterations {
		dir := t.TempDir()
		crashWorkspace(t, dir)
		run := exec.Command(bin, "run", "crash.md", "--env", "dev")
		run.Dir = dir
		must(t, run.Start())
		// Start-up (opening and migrating the store) takes a while; aim the
		// kill at the steps, from the moment the store file appears.
		for range 200 {
			if _, err := os.Stat(filepath.Join(dir, ".opsbook", "opsbook.db")); err == nil {
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
		time.Sleep(time.Duration(rand.IntN(200)) * time.Millisecond)
		run.Process.Signal(syscall.SIGKILL)
		run.Wait()

		list := exec.Command(bin, "runs", "-o", "json")
		list.Dir = dir
		out, err := list.Output()
		if err != nil {
			// Killed before the store existed: nothing was recorded, nothing ran.
			if _, statErr := os.Stat(filepath.Join(dir, "ran")); statErr == nil {
				t.Fatalf("iteration %d: steps ran but no run store: %v", it, err)
			}
			beforeRecord++
			continue
		}
		var runs []runbook.Run
		must(t, json.Unmarshal(out, &runs))
		if len(runs) == 0 {
			if _, statErr := os.Stat(filepath.Join(dir, "ran")); statErr == nil {
				t.Fatalf("iteration %d: steps ran but no run was recorded", it)
			}
			beforeRecord++
			continue
		}
		id := runs[0].ID
		before, stateBefore := runLog(t, dir, id)
		doneBefore := map[string]bool{}
		for _, s := range stateBefore.Steps {
			if s.Status == runbook.StepSucceeded {
				doneBefore[s.ID] = true
			}
		}
		if runs[0].Status == runbook.RunSucceeded {
			finishedFirst++
		} else {
			if runs[0].Status != runbook.RunInterrupted && runs[0].Status != runbook.RunPending {
				t.Fatalf("iteration %d: killed run listed as %s, want interrupted", it, runs[0].Status)
			}
			killedMidRun++
			resume := exec.Command(bin, "resume", id)
			resume.Dir = dir
			if out, err := resume.CombinedOutput(); err != nil {
				t.Fatalf("iteration %d: resume %s: %v\n%s", it, id, err, out)
			}
		}
		after, state := runLog(t, dir, id)
		if state.Status != runbook.RunSucceeded || len(state.Steps) != crashSteps {
			t.Fatalf("iteration %d: after resume the run is %s with %d steps", it, state.Status, len(state.Steps))
		}
		// Nothing recorded before the kill was lost or changed.
		if len(after) < len(before) {
			t.Fatalf("iteration %d: %d events before resume, %d after", it, len(before), len(after))
		}
		for i := range before {
			if before[i].Seq != after[i].Seq || before[i].Text != after[i].Text || before[i].Type != after[i].Type {
				t.Fatalf("iteration %d: event %d changed: %+v → %+v", it, i+1, before[i], after[i])
			}
		}
		ranBytes, _ := os.ReadFile(filepath.Join(dir, "ran"))
		counts := map[string]int{}
		for _, l := range strings.Fields(string(ranBytes)) {
			counts[l]++
		}
		// Each step's last attempt recorded its whole output.
		lastAttempt := map[string]int{}
		output := map[string]string{}
		for _, ev := range after {
			if ev.Type == runbook.EventStepStarted {
				lastAttempt[ev.Step] = ev.Attempt
				output[ev.Step] = ""
			}
			if ev.Type == runbook.EventStepOutput && ev.Attempt == lastAttempt[ev.Step] {
				output[ev.Step] += ev.Text
			}
		}
		for i := 1; i <= crashSteps; i++ {
			s := fmt.Sprintf("s%d", i)
			if doneBefore[s] && counts[s] != 1 {
				t.Fatalf("iteration %d: step %s completed before the kill but ran %d times", it, s, counts[s])
			}
			attempts := state.Step(s).Attempts
			if counts[s] < 1 || counts[s] > attempts {
				t.Fatalf("iteration %d: step %s ran %d times for %d recorded attempts", it, s, counts[s], attempts)
			}
			if want := "output of " + s + "\n"; output[s] != want {
				t.Fatalf("iteration %d: step %s recorded output %q, want %q", it, s, output[s], want)
			}
		}
	}
	t.Logf("%d iterations: %d killed mid-run and resumed, %d finished before the kill, %d killed before anything was recorded",
		iterations, killedMidRun, finishedFirst, beforeRecord)
	if killedMidRun < iterations/3 {
		t.Errorf("only %d of %d kills landed mid-run; the test is not testing resume", killedMidRun, iterations)
	}
}

// TestStepStartTitleOfItsPhase: a host's start of a rollback step shows the
// rollback step's title, not the title of a main step with the same id
// (fault class: a per-host line showing another document's title, or none).
func TestStepStartTitleOfItsPhase(t *testing.T) {
	titles := map[string]string{"drop": "Drop the new cluster", "rollback/drop": "Start the old cluster again"}
	for _, c := range []struct {
		ev   runbook.Event
		want string
	}{
		{runbook.Event{Type: runbook.EventStepStarted, Step: "drop"}, "-> [drop] Drop the new cluster"},
		{runbook.Event{Type: runbook.EventStepStarted, Step: "drop", Host: "db1"}, "-> [drop@db1] Drop the new cluster"},
		{runbook.Event{Type: runbook.EventStepStarted, Step: "drop", Host: "db1", Data: map[string]string{"phase": runbook.PhaseRollback}}, "-> [rollback/drop@db1] Start the old cluster again"},
		{runbook.Event{Type: runbook.EventStepStarted, Step: "drop", Data: map[string]string{"phase": runbook.PhaseRollback}}, "-> [rollback/drop] Start the old cluster again"},
	} {
		if got := describeEvent(c.ev, titles); got != c.want {
			t.Errorf("describeEvent(%+v) = %q, want %q", c.ev, got, c.want)
		}
	}
}
