package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/opsbook/opsbook/internal/runbook"
)

// A local command runs in its own process group, which the executor kills
// on timeout or cancellation. When opsbook itself dies (kill -9, power
// loss of the terminal), nobody kills it: a resumed run would then re-run
// an idempotent step next to its still-running first attempt. So each
// spawn is recorded (step.spawned: pgid, the leader's start time, the boot
// id), and Resume stops the groups of interrupted steps that still live on
// this machine before it goes on.

// spawnRecord returns the Started callback of a local command: it records
// the process group before the run goes on, so that a kill -9 right after
// the spawn still leaves it in the log.
func (r *runner) spawnRecord(phase string, step *runbook.Step, host string, attempt int, kind string) func(pid int) {
	return func(pid int) {
		start, _ := procStartTime(pid)
		ev := r.stepEvent(runbook.EventStepSpawned, phase, step, host, attempt,
			withData("pgid", strconv.Itoa(pid), "start", start, "boot", bootID(), "kind", kind))
		// A failure to record is not a reason to stop the command: the
		// step's own events will fail the run if the store is gone.
		r.append(context.Background(), ev)
	}
}

// spawn is a recorded process group.
type spawn struct {
	step, phase string
	pgid        int
	start, boot string
}

// stopOrphans finds the process groups the dead process left running for
// the steps it was running and stops them: SIGTERM, then SIGKILL after
// the grace period. Each one stopped is recorded (orphan.stopped) and
// shown to the operator through the observer.
func (r *runner) stopOrphans(ctx context.Context) error {
	running := map[string]bool{}
	r.appendMu.Lock()
	for _, st := range r.state.AllSteps() {
		if st.Status == runbook.StepRunning {
			running[st.Phase+"/"+st.ID] = true
		}
	}
	r.appendMu.Unlock()
	if len(running) == 0 {
		return nil
	}
	// The last spawn of each interrupted step is the command that was
	// running; earlier ones ended (a daemon they left is theirs to keep).
	last := map[string]spawn{}
	for ev, err := range r.e.cfg.Store.StateEvents(ctx, r.run.ID, 0) {
		if err != nil {
			return fmt.Errorf("read the log of run %s: %w", r.run.ID, err)
		}
		if ev.Type != runbook.EventStepSpawned {
			continue
		}
		key := ev.Data["phase"] + "/" + ev.Step
		if !running[key] {
			continue
		}
		pgid, err := strconv.Atoi(ev.Data["pgid"])
		if err != nil || pgid <= 1 {
			continue
		}
		last[key] = spawn{step: ev.Step, phase: ev.Data["phase"], pgid: pgid, start: ev.Data["start"], boot: ev.Data["boot"]}
	}
	for _, sp := range last {
		if !sp.alive() {
			continue
		}
		signal := sp.terminate(r.e.cfg.OrphanGrace)
		text := fmt.Sprintf("step %s%s: the interrupted run's command (process group %d) was still running on this host; stopped it with %s before going on",
			phasePrefix(sp.phase), sp.step, sp.pgid, signal)
		if signal == "" {
			text = fmt.Sprintf("step %s%s: the interrupted run's command (process group %d) is still running on this host and could not be stopped; stop it by hand (kill -KILL -- -%d)",
				phasePrefix(sp.phase), sp.step, sp.pgid, sp.pgid)
		}
		ev := runbook.Event{Type: runbook.EventOrphanStopped, Step: sp.step, Actor: "opsbook", Text: text,
			Data: map[string]string{"pgid": strconv.Itoa(sp.pgid), "signal": signal}}
		if sp.phase != runbook.PhaseMain {
			ev.Data["phase"] = sp.phase
		}
		if err := r.append(ctx, ev); err != nil {
			return err
		}
	}
	return nil
}

// alive reports whether the recorded group still has a live member on
// this machine. A different boot means everything died with the machine.
// When the leader's pid exists, its start time must match: the pid may
// have been reused by an unrelated process. When the leader is gone, its
// pid cannot have been reused as a group id while members remain, so any
// live member is the orphan's.
func (sp spawn) alive() bool {
	if sp.boot == "" || sp.boot != bootID() {
		return false
	}
	if start, err := procStartTime(sp.pgid); err == nil && start != sp.start {
		return false
	}
	return len(groupMembers(sp.pgid)) > 0
}

// terminate stops the group and returns the last signal it needed, or ""
// when members survived SIGKILL.
func (sp spawn) terminate(grace time.Duration) string {
	if grace <= 0 {
		grace = 5 * time.Second
	}
	syscall.Kill(-sp.pgid, syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if len(groupMembers(sp.pgid)) == 0 {
			return "SIGTERM"
		}
		time.Sleep(20 * time.Millisecond)
	}
	syscall.Kill(-sp.pgid, syscall.SIGKILL)
	for range 50 {
		if len(groupMembers(sp.pgid)) == 0 {
			return "SIGKILL"
		}
		time.Sleep(20 * time.Millisecond)
	}
	return ""
}

// groupMembers lists the live (not zombie) processes of a process group,
// from /proc: a zombie is dead even while its parent has not reaped it.
func groupMembers(pgid int) []int {
	dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
	var pids []int
	for _, f := range dirs {
		fields, err := procStat(f)
		if err != nil || len(fields) < 3 {
			continue
		}
		// fields[0] is the state, fields[2] the process group.
		if fields[2] == strconv.Itoa(pgid) && fields[0] != "Z" && fields[0] != "X" {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(f)))
			pids = append(pids, pid)
		}
	}
	return pids
}

// procStartTime is the start time of a process in clock ticks since boot
// (/proc/PID/stat field 22): with the boot id, it tells a process from a
// later one that got the same pid.
func procStartTime(pid int) (string, error) {
	fields, err := procStat(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", err
	}
	// Field 22 overall is the 20th after the "(comm)".
	if len(fields) < 20 {
		return "", errors.New("short /proc stat")
	}
	return fields[19], nil
}

// procStat returns the fields of a /proc/PID/stat file after "(comm)",
// which may itself contain spaces and parentheses.
func procStat(path string) ([]string, error) {
	b, err := readProcFile(path)
	if err != nil {
		return nil, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, errors.New("malformed /proc stat")
	}
	return strings.Fields(string(b[i+1:])), nil
}

// readProcFile reads a small /proc file with one read into a buffer
// big enough for a stat line (comm is at most 64 bytes, the rest numbers):
// the kernel generates the content on every read, and os.ReadFile's
// reads until end of file (and its fstat, and os.File's poller probe) cost
// a spawn, whose step.spawned reads its stat line, twice what the one read
// does. A file that fills the buffer is read again whole.
func readProcFile(path string) ([]byte, error) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer syscall.Close(fd)
	buf := make([]byte, 1024)
	for {
		n, err := syscall.Read(fd, buf)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: path, Err: err}
		}
		if n == len(buf) {
			return os.ReadFile(path)
		}
		return buf[:n], nil
	}
}

// bootID names this boot of the machine; "" where /proc does not tell.
var bootID = sync.OnceValue(func() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
})
