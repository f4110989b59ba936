// Package labs runs the built-in library's runbooks for real: each test
// starts its own throwaway systems on loopback (PostgreSQL clusters, nginx,
// an sshd the runbook's targets log in to), generates a task with
// `opsbook new` exactly as a user would, fills in only opsbook.yaml and the
// parameters, runs it with the opsbook binary, and then checks
// independently (psql, openssl, curl) that the operation really happened.
// Named faults then break what a step claims to check, and each must make
// the run fail — and roll back where the runbook says so.
package labs

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opsbook/opsbook/internal/executor/sshexec/sshdtest"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/store/pgtest"
	"github.com/opsbook/opsbook/internal/testbin"
)

func TestMain(m *testing.M) {
	// The labs wait on processes (ssh, psql, nginx) far more than they
	// compute: run them all at once rather than GOMAXPROCS at a time,
	// unless -test.parallel says otherwise.
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if !explicit {
		flag.Set("test.parallel", "8")
	}
	code := m.Run()
	testbin.Cleanup()
	os.Exit(code)
}

// requireTools skips the lab on a developer's machine without the tools,
// and fails it under CI=true (scripts/test.sh installs them).
func requireTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is not installed; CI=true requires the labs (scripts/test.sh installs it)", tool)
			}
			t.Skipf("%s is not installed; skipping the lab (set CI=true to make this a failure)", tool)
		}
	}
	if _, err := os.Stat(sshdtest.SSHDPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed; CI=true requires the labs", sshdtest.SSHDPath)
		}
		t.Skipf("%s is not installed; skipping the lab", sshdtest.SSHDPath)
	}
}

// lab is a workspace whose staging environment has one host, a real sshd
// on loopback tagged with the roles the library's targets select. Commands
// the runbook runs there find the fault wrappers first on PATH.
type lab struct {
	t      *testing.T
	dir    string   // the workspace
	env    []string // for the opsbook binary: HOME with the client key
	faults string   // wrapper scripts; "active" names the injected fault
	host   sshdtest.Server
}

const stdPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// newLab starts the sshd and writes the workspace. roles are the values of
// the host's role tag the runbook's targets select (one host plays them
// all: a lab is one machine).
func newLab(t *testing.T, roles ...string) *lab {
	t.Helper()
	l := &lab{t: t, dir: t.TempDir(), faults: t.TempDir()}
	must(t, os.Chmod(l.faults, 0o755))
	c, err := sshdtest.Launch(t.TempDir(), 1, sshdtest.Config{Extra: []string{
		"SetEnv SHLVL=1 PATH=" + filepath.Join(l.faults, "bin") + ":" + stdPath}})
	if err != nil {
		t.Fatalf("start sshd: %v", err)
	}
	t.Cleanup(c.Stop)
	l.host = c.Servers[0]
	must(t, os.MkdirAll(filepath.Join(l.faults, "bin"), 0o755))

	l.env = clientEnv(t, sshdtest.ClientKey(l.host), "")

	l.opsbook(0, "init")
	must(t, os.WriteFile(filepath.Join(l.dir, "ops", "known_hosts"), []byte(l.host.KnownHostsLine()+"\n"), 0o600))
	var tags []string
	for i, r := range roles {
		key := "role"
		if i > 0 {
			key = fmt.Sprintf("role%d", i+1)
		}
		tags = append(tags, key+": "+r)
	}
	h := l.host.Host
	l.writeConfig(fmt.Sprintf("{name: lab1, address: %s, port: %d, user: %s, tags: {%s}}", h.Address, h.Port, h.User, strings.Join(tags, ", ")))
	return l
}

// writeConfig writes the lab workspace's opsbook.yaml: a staging
// environment with hosts (one inventory entry each, as YAML flow
// mappings) trusted through ops/known_hosts, and a protected production.
func (l *lab) writeConfig(hosts ...string) {
	l.t.Helper()
	var b strings.Builder
	b.WriteString(`name: lab
lang: en
projects:
  - name: lab
    runbooks: ["ops/runbooks/*.md", "ops/active/**/*-runbook.md"]
environments:
  - name: staging
    known_hosts: ops/known_hosts
    hosts:
`)
	for _, h := range hosts {
		b.WriteString("      - " + h + "\n")
	}
	b.WriteString("  - name: production\n    protected: true\n")
	must(l.t, os.WriteFile(filepath.Join(l.dir, "opsbook.yaml"), []byte(b.String()), 0o644))
}

// clientEnv is the environment the opsbook binary runs with in a lab: this
// process's, without the user's HOME, SSH agent and OPSBOOK_ settings,
// with a HOME whose ssh client key is keyFile (the one the lab's sshd
// authorises), and with path, when given, first on PATH.
func clientEnv(t *testing.T, keyFile, path string) []string {
	t.Helper()
	home := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(home, ".ssh"), 0o700))
	key, err := os.ReadFile(keyFile)
	must(t, err)
	must(t, os.WriteFile(filepath.Join(home, ".ssh", "id_ed25519"), key, 0o600))
	var env []string
	for _, kv := range os.Environ() {
		switch {
		case strings.HasPrefix(kv, "HOME="), strings.HasPrefix(kv, "SSH_AUTH_SOCK="), strings.HasPrefix(kv, "OPSBOOK_"):
		case strings.HasPrefix(kv, "PATH=") && path != "":
			env = append(env, "PATH="+path+":"+strings.TrimPrefix(kv, "PATH="))
		default:
			env = append(env, kv)
		}
	}
	return append(env, "HOME="+home)
}

// opsbook runs the binary in the workspace; want is the exit status the
// caller expects (-1: any).
func (l *lab) opsbook(want int, args ...string) string {
	l.t.Helper()
	cmd := exec.Command(testbin.Opsbook(l.t), args...)
	cmd.Dir, cmd.Env = l.dir, l.env
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		l.t.Fatalf("opsbook %v: %v", args, err)
	}
	if testing.Verbose() {
		// go test -v shows the lab as a user would see it (README).
		l.t.Logf("$ opsbook %s    (exit %d)\n%s", strings.Join(args, " "), code, out)
	}
	if want >= 0 && code != want {
		l.t.Fatalf("opsbook %s: exit %d, want %d\n%s", strings.Join(args, " "), code, want, outcome(string(out)))
	}
	return string(out)
}

// newTask generates a task from a description, as a user would, and
// checks it came from the expected library runbook.
func (l *lab) newTask(description, library string) string {
	l.t.Helper()
	var res struct {
		Task    string `json:"task"`
		Library string `json:"library"`
	}
	out := l.opsbook(0, "new", description, "-o", "json")
	must(l.t, json.Unmarshal([]byte(out), &res))
	if res.Library != library {
		l.t.Fatalf("opsbook new %q chose %q, want the library's %s:\n%s", description, res.Library, library, out)
	}
	return res.Task
}

// run runs a task in staging with gates approved and returns the output
// and the finished run.
func (l *lab) run(want int, task string, params ...string) (string, runbook.Run) {
	l.t.Helper()
	args := []string{"run", task, "--env", "staging", "--yes"}
	for _, p := range params {
		args = append(args, "--param", p)
	}
	out := l.opsbook(want, args...)
	var runs []runbook.Run
	must(l.t, json.Unmarshal([]byte(l.opsbook(0, "runs", "-o", "json")), &runs))
	if len(runs) == 0 {
		l.t.Fatalf("no run recorded:\n%s", out)
	}
	return out, runs[0]
}

// inject makes the fault wrappers act; "" removes the fault.
func (l *lab) inject(fault string) {
	l.t.Helper()
	must(l.t, os.WriteFile(filepath.Join(l.faults, "active"), []byte(fault+"\n"), 0o644))
}

// wrap installs a wrapper of a command on the lab host's PATH: body runs
// with the real command's path in $real, the injected fault's name in
// $fault (read from the file $active), and must run "$real" "$@" itself.
func (l *lab) wrap(command, body string) {
	l.t.Helper()
	real, err := exec.LookPath(command)
	must(l.t, err)
	active := filepath.Join(l.faults, "active")
	script := fmt.Sprintf("#!/bin/bash\nreal=%s\nactive=%s\nfault=$(cat \"$active\" 2>/dev/null || true)\n%s\n", real, active, body)
	must(l.t, os.WriteFile(filepath.Join(l.faults, "bin", command), []byte(script), 0o755))
}

// netnsLink creates the network namespace netns of a lab host, with its
// own loopback and a veth link (veth on the machine, veth+"p" inside) on
// which the machine has machineAddr and the host hostAddr (both /30); the
// namespace goes at the end of the test. Namespace and link names are the
// machine's, not the test's: callers make them unique to the process.
func netnsLink(t *testing.T, netns, veth, machineAddr, hostAddr string) {
	t.Helper()
	sh(t, fmt.Sprintf(`ip netns add %[1]s
ip -n %[1]s link set lo up
ip link add %[2]s type veth peer name %[2]sp netns %[1]s
ip addr add %[3]s/30 dev %[2]s
ip link set %[2]s up
ip -n %[1]s addr add %[4]s/30 dev %[2]sp
ip -n %[1]s link set %[2]sp up`, netns, veth, machineAddr, hostAddr))
	t.Cleanup(func() { exec.Command("ip", "netns", "del", netns).Run() })
}

// namespacedSSHD is what an sshd serving a lab host of its own needs (see
// sshdtest.Config.Process): the sshd_config line that runs every command
// in the host's network namespace, and the wrapper that gives sshd a
// mount namespace where each directory of binds (source, target pairs) is
// bind-mounted at its target.
func namespacedSSHD(netns string, binds ...string) (forceCommand string, wrap []string) {
	var script []string
	for i := 1; i < len(binds); i += 2 {
		script = append(script, fmt.Sprintf(`mount --bind "$%d" "$%d"`, i, i+1))
	}
	script = append(script, fmt.Sprintf(`shift %d && exec "$@"`, len(binds)))
	return `ForceCommand exec nsenter --net=/run/netns/` + netns + ` -- /bin/sh -c "$SSH_ORIGINAL_COMMAND"`,
		append([]string{"unshare", "--mount", "--propagation", "private", "--", "sh", "-c", strings.Join(script, " && "), "sh"}, binds...)
}

// freePortOn is a TCP port free on every address, below the kernel's
// ephemeral range (net.ipv4.ip_local_port_range). A lab's services stop
// and start again on their port (an upgrade, a failover, a restart), and
// while one is down, a port the kernel hands out for ":0" could go to any
// other test of the suite: a listener, or the local end of a connection.
// Fault class: a service that cannot come back because its port was taken
// (the upgrade lab's new cluster once found 127.0.0.1:33671 in use).
func freePortOn(t *testing.T, addrs ...string) int {
	t.Helper()
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 11000 {
				low = n
			}
		}
	}
	for range 200 {
		port := 10000 + rand.IntN(low-10000)
		free := true
		var held []net.Listener
		for _, a := range addrs {
			l, err := net.Listen("tcp", net.JoinHostPort(a, strconv.Itoa(port)))
			if err != nil {
				free = false
				break
			}
			held = append(held, l)
		}
		for _, l := range held {
			l.Close()
		}
		if free {
			return port
		}
	}
	t.Fatal("no port free on " + strings.Join(addrs, ", "))
	return 0
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// sh runs a shell command for an independent check and returns its
// trimmed output.
func sh(t *testing.T, command string) string {
	t.Helper()
	out, err := exec.Command("bash", "-c", "set -eo pipefail\n"+command).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", command, err, out)
	}
	return strings.TrimSpace(string(out))
}

var execCommand = exec.Command

// waitFor polls cond for up to 30 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// session is a client connected to a database and idle, as a tester's
// forgotten psql is.
type session struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
}

func startSession(t *testing.T, c *pgtest.Cluster, db string) *session {
	t.Helper()
	cmd := exec.Command("psql", "-h", "127.0.0.1", "-p", fmt.Sprint(c.Port()), "-U", "postgres", "-d", db, "-Xq")
	in, err := cmd.StdinPipe()
	must(t, err)
	must(t, cmd.Start())
	s := &session{cmd: cmd, stdin: in}
	t.Cleanup(s.stop)
	waitFor(t, "the session to connect", func() bool {
		out, _ := psqlErr(c, "postgres", fmt.Sprintf("select count(*) from pg_stat_activity where datname = '%s' and pid <> pg_backend_pid()", db))
		return out != "0"
	})
	return s
}

func (s *session) stop() {
	s.stdin.Close()
	s.cmd.Process.Kill()
	s.cmd.Wait()
}

// outcome is a lab run's output with what decided it first: the run's
// and the rehearsal's own lines (==, !!, mutants, opsbook's errors), each
// step that did not succeed with the lines it printed last, and the
// output's last lines (an error opsbook ends with, such as a failed
// rollback's log). A CI log shows the head and the tail of a long failure
// message and cuts the middle, which is where a lab run of a few hundred
// lines goes wrong; the tail is taken by the clusters' logs the cleanups
// print.
func outcome(out string) string {
	const context, last = 6, 20
	var key, recent []string // recent: the current step's last lines
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	for _, line := range lines {
		step := strings.HasPrefix(line, "-> ") || strings.HasPrefix(line, "<- ")
		failed := strings.HasPrefix(line, "<- ") && !strings.Contains(line, "] succeeded") && !strings.Contains(line, "] skipped")
		keep := failed // a line of the run's or the rehearsal's own
		for _, p := range []string{"== ", "!! ", "opsbook:", "mutant ", "   restoring ", "every check "} {
			keep = keep || strings.HasPrefix(line, p)
		}
		switch {
		case failed:
			key = append(append(key, recent...), line)
		case keep:
			key = append(key, line)
		}
		switch {
		case step:
			recent = recent[:0]
		case !keep:
			if recent = append(recent, line); len(recent) > context {
				recent = recent[1:]
			}
		}
	}
	end := lines[max(0, len(lines)-last):]
	return "what decided it:\n" + strings.Join(key, "\n") + "\n\nhow it ended:\n" + strings.Join(end, "\n") +
		"\n\nthe whole output:\n" + out
}
