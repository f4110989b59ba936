package store

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// An owner names the holder of a run lease. The store understands owners
// of the form made by ProcessOwner, "HOST:PID:START:SPACE" (START is the
// process start time in clock ticks since boot, from /proc/PID/stat; SPACE
// is the kernel's boot id and the pid namespace, where PID means something):
// such an owner in our own SPACE on this host is known dead as soon as its
// process is gone, without waiting for the lease to expire. Any other owner
// — a server instance name, another host, another container's pid
// namespace, or a boot before the last reboot (indistinguishable from
// another machine with the same host name) — is trusted until its lease
// expires, which the holder's renewals keep short (the engine uses 15 s).

// ProcessOwner is the owner string of the calling process.
func ProcessOwner() string { return processOwner() }

var processOwner = sync.OnceValue(func() string {
	pid := os.Getpid()
	start, _ := processStartTicks(pid)
	return fmt.Sprintf("%s:%d:%d:%s", localHost(), pid, start, processSpace())
})

type processID struct {
	host  string
	pid   int
	start uint64
	space string
}

func parseOwner(owner string) (processID, bool) {
	parts := strings.Split(owner, ":")
	if len(parts) < 4 {
		return processID{}, false
	}
	n := len(parts)
	pid, err1 := strconv.Atoi(parts[n-3])
	start, err2 := strconv.ParseUint(parts[n-2], 10, 64)
	if err1 != nil || err2 != nil || pid <= 0 {
		return processID{}, false
	}
	return processID{host: strings.Join(parts[:n-3], ":"), pid: pid, start: start, space: parts[n-1]}, true
}

// ownerDead reports whether owner is a process of this host that no longer
// runs. False means alive or unknown (another host, another owner form).
func ownerDead(owner string) bool {
	p, ok := parseOwner(owner)
	if !ok || p.host != localHost() || p.space != processSpace() || processSpace() == "" {
		return false
	}
	if err := syscall.Kill(p.pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	// The pid exists; it is the owner only if it started when the owner did
	// (pids are reused) and has not merely died unreaped: a process killed
	// with kill -9 stays a zombie until its parent (often init) waits for it.
	start, state, err := processStat(p.pid)
	if err != nil {
		return errors.Is(err, os.ErrNotExist) // exited between the two checks
	}
	if state == "Z" || state == "X" {
		return true
	}
	return p.start != 0 && start != p.start
}

var localHost = sync.OnceValue(func() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "localhost"
	}
	return h
})

// processSpace identifies where pids of this process mean the same thing:
// the boot (pids restart) and the pid namespace (containers). Empty when
// unknown, in which case no owner is judged by its pid.
var processSpace = sync.OnceValue(func() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	ns, err := os.Readlink("/proc/self/ns/pid") // "pid:[4026531836]"
	if err != nil {
		return ""
	}
	ns = strings.TrimSuffix(strings.TrimPrefix(ns, "pid:["), "]")
	return strings.ReplaceAll(strings.TrimSpace(string(b)), "-", "") + "." + ns
})

// processStartTicks reads field 22 (starttime) of /proc/PID/stat.
func processStartTicks(pid int) (uint64, error) {
	start, _, err := processStat(pid)
	return start, err
}

// processStat reads fields 22 (starttime) and 3 (state: R, S, Z, …) of
// /proc/PID/stat. The command name (field 2) may hold spaces and
// parentheses, so fields are counted after its closing parenthesis.
func processStat(pid int) (start uint64, state string, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, "", err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, "", fmt.Errorf("parse /proc/%d/stat: no command name", pid)
	}
	fields := strings.Fields(s[i+1:]) // fields[0] is field 3 (state)
	if len(fields) < 20 {
		return 0, "", fmt.Errorf("parse /proc/%d/stat: %d fields", pid, len(fields)+2)
	}
	start, err = strconv.ParseUint(fields[19], 10, 64)
	return start, fields[0], err
}
