package cli

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/testbin"
)

// TestKillNineKeepsTheFinishedStep: fault — `opsbook run` is killed with
// SIGKILL while the step after a completed one runs. A successful step's
// step.finished is not committed on its own: it is held and commits in the
// transaction (and fsync) of the next step's step.started, before that
// step's command is spawned. So once the next command runs, the completed
// step is in the log: resume goes on from the interrupted step and never
// asks about, or re-runs, the completed one — which is not idempotent, so
// a lost step.finished would make resume stop and ask (no --answer here)
// instead of completing the run.
func TestKillNineKeepsTheFinishedStep(t *testing.T) {
	bin := testbin.Opsbook(t)
	t.Setenv("TMPDIR", t.TempDir()) // the killed process leaves its executor's directory
	for it := range 3 {
		dir := t.TempDir()
		must(t, os.WriteFile(filepath.Join(dir, "opsbook.yaml"), []byte("name: held\nenvironments:\n  - name: dev\n"), 0o644))
		must(t, os.WriteFile(filepath.Join(dir, "rb.md"), []byte("---\nkind: runbook\ntitle: Held\n---\n\n# Held\n\n## Steps\n\n"+
			"### Once\n\n```sh {id=once outputs=TOKEN}\necho once >> ran\necho TOKEN=t1 >> \"$OPSBOOK_OUTPUT\"\n```\n\n"+
			"### Long\n\n```sh {id=long idempotent}\n[ \"$TOKEN\" = t1 ]\necho long >> ran\nif [ ! -e resumed ]; then touch running; exec sleep 1000; fi\n```\n\n"+
			"### After\n\n```sh {id=after}\necho after >> ran\n```\n"), 0o644))
		run := exec.Command(bin, "run", "rb.md", "--env", "dev")
		run.Dir = dir
		must(t, run.Start())
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			if _, err := os.Stat(filepath.Join(dir, "running")); err == nil {
				break
			}
			if time.Now().After(deadline) {
				run.Process.Kill()
				t.Fatal("step long never ran")
			}
		}
		run.Process.Signal(syscall.SIGKILL)
		run.Wait()

		list := exec.Command(bin, "runs", "-o", "json")
		list.Dir = dir
		out, err := list.Output()
		var runs []runbook.Run
		if err != nil || json.Unmarshal(out, &runs) != nil || len(runs) != 1 {
			t.Fatalf("iteration %d: runs: %v %s", it, err, out)
		}
		id := runs[0].ID
		evs, s := runLog(t, dir, id)
		if st := s.Step("once"); st == nil || st.Status != runbook.StepSucceeded || s.Outputs["TOKEN"] != "t1" {
			t.Fatalf("iteration %d: after the kill step once is %+v, outputs %v; want succeeded with TOKEN", it, st, s.Outputs)
		}
		finished, started := int64(0), int64(0)
		for _, ev := range evs {
			switch {
			case ev.Type == runbook.EventStepSpawned && ev.Step == "long":
				if pgid, _ := strconv.Atoi(ev.Data["pgid"]); pgid > 1 {
					t.Cleanup(func() { syscall.Kill(-pgid, syscall.SIGKILL) })
				}
			case ev.Type == runbook.EventStepFinished && ev.Step == "once":
				finished = ev.Seq
			case ev.Type == runbook.EventStepStarted && ev.Step == "long":
				started = ev.Seq
			}
		}
		if finished == 0 || started != finished+1 {
			t.Fatalf("iteration %d: once finished at seq %d, long started at %d; want nothing between them", it, finished, started)
		}

		must(t, os.WriteFile(filepath.Join(dir, "resumed"), nil, 0o644))
		resume := exec.Command(bin, "resume", id)
		resume.Dir = dir
		if out, err := resume.CombinedOutput(); err != nil {
			t.Fatalf("iteration %d: resume: %v\n%s", it, err, out)
		}
		_, s = runLog(t, dir, id)
		ran, _ := os.ReadFile(filepath.Join(dir, "ran"))
		if s.Status != runbook.RunSucceeded || string(ran) != "once\nlong\nlong\nafter\n" {
			t.Fatalf("iteration %d: run %s, ran %q; want succeeded, once run once", it, s.Status, strings.ReplaceAll(string(ran), "\n", " "))
		}
	}
}
