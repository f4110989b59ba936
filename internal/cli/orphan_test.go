package cli

import (
	"bytes"
	"encoding/json"
	"github.com/opsbook/opsbook/internal/testbin"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opsbook/opsbook/internal/runbook"
)

// liveGroupMembers lists the processes of a process group that are not
// zombies (an orphan killed here may wait to be reaped by init).
func liveGroupMembers(pgid int) []string {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var out []string
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		fields := strings.Fields(string(b[i+1:]))
		if len(fields) > 2 && fields[2] == strconv.Itoa(pgid) && fields[0] != "Z" {
			out = append(out, string(b[:i+1]))
		}
	}
	return out
}

// TestOrphanStoppedOnResume kills `opsbook run` with SIGKILL while an
// idempotent step runs `sleep 1000` in the background of its shell, then
// resumes: the left-over process group is stopped before the step runs
// again, and that is recorded.
func TestOrphanStoppedOnResume(t *testing.T) {
	bin := testbin.Opsbook(t)
	// opsbook killed with SIGKILL cannot remove its executor's temp dir:
	// keep those inside the test's own directory.
	t.Setenv("TMPDIR", t.TempDir())
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "opsbook.yaml"), []byte("name: orphan\nenvironments:\n  - name: dev\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "rb.md"), []byte("---\nkind: runbook\ntitle: Orphan\n---\n\n# Orphan\n\n## Steps\n\n"+
		"### Long\n\n```sh {id=long idempotent}\nif [ -e started ]; then echo second >> ran; exit 0; fi\ntouch started\nsleep 1000 &\nwait\n```\n\n"+
		"### After\n\n```sh {id=after}\necho after >> ran\n```\n"), 0o644))
	run := exec.Command(bin, "run", "rb.md", "--env", "dev")
	run.Dir = dir
	must(t, run.Start())
	killed := false
	defer func() {
		if !killed {
			run.Process.Kill()
			run.Wait()
		}
	}()

	var id string
	pgid := 0
	for deadline := time.Now().Add(20 * time.Second); pgid == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the step's process group was never recorded")
		}
		if _, err := os.Stat(filepath.Join(dir, "started")); err != nil {
			continue
		}
		list := exec.Command(bin, "runs", "-o", "json")
		list.Dir = dir
		out, err := list.Output()
		var runs []runbook.Run
		if err != nil || json.Unmarshal(out, &runs) != nil || len(runs) == 0 {
			continue
		}
		id = runs[0].ID
		evs, _ := runLog(t, dir, id)
		for _, ev := range evs {
			if ev.Type == runbook.EventStepSpawned && ev.Step == "long" {
				pgid, _ = strconv.Atoi(ev.Data["pgid"])
			}
		}
	}
	if len(liveGroupMembers(pgid)) == 0 {
		t.Fatalf("process group %d is not running before the kill", pgid)
	}
	run.Process.Signal(syscall.SIGKILL)
	run.Wait()
	killed = true
	t.Cleanup(func() { syscall.Kill(-pgid, syscall.SIGKILL) })
	time.Sleep(50 * time.Millisecond)
	if members := liveGroupMembers(pgid); len(members) == 0 {
		t.Fatalf("the orphan died with opsbook; nothing to test")
	}

	resume := exec.Command(bin, "resume", id)
	resume.Dir = dir
	out, err := resume.CombinedOutput()
	if err != nil {
		t.Fatalf("resume: %v\n%s", err, out)
	}
	if members := liveGroupMembers(pgid); len(members) > 0 {
		t.Fatalf("process group %d still has %v after resume", pgid, members)
	}
	evs, s := runLog(t, dir, id)
	stoppedAt, rerunAt := -1, -1
	for i, ev := range evs {
		if ev.Type == runbook.EventOrphanStopped && ev.Data["pgid"] == strconv.Itoa(pgid) {
			stoppedAt = i
		}
		if ev.Type == runbook.EventStepStarted && ev.Step == "long" && ev.Attempt == 2 {
			rerunAt = i
		}
	}
	if stoppedAt < 0 || rerunAt < stoppedAt {
		t.Fatalf("orphan.stopped at %d, re-run at %d", stoppedAt, rerunAt)
	}
	if ran, _ := os.ReadFile(filepath.Join(dir, "ran")); string(ran) != "second\nafter\n" || s.Status != runbook.RunSucceeded {
		t.Fatalf("run %s, ran %q", s.Status, ran)
	}
}
