package cli

import (
	"encoding/json"
	"fmt"
	"github.com/opsbook/opsbook/internal/testbin"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opsbook/opsbook/internal/executor/sshexec/sshdtest"
	"github.com/opsbook/opsbook/internal/runbook"
	"golang.org/x/crypto/ssh"
)

// sshWorkspace writes a workspace whose staging environment has web1..web4
// on the given ports (all tagged role=web) and ops/known_hosts trusting the
// given servers, and returns the environment for the opsbook binary: a
// HOME whose ~/.ssh holds the servers' client key, and no ssh-agent.
func sshWorkspace(t *testing.T, dir string, ports []int, trusted []sshdtest.Server, runbookSrc string) []string {
	t.Helper()
	writeInventory(t, dir, ports)
	must(t, os.MkdirAll(filepath.Join(dir, "ops"), 0o755))
	must(t, sshdtest.WriteKnownHosts(filepath.Join(dir, "ops", "known_hosts"), trusted...))
	must(t, os.WriteFile(filepath.Join(dir, "deploy.md"), []byte(runbookSrc), 0o644))
	home := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(home, ".ssh"), 0o700))
	key, err := os.ReadFile(sshdtest.ClientKey(trusted[0]))
	must(t, err)
	must(t, os.WriteFile(filepath.Join(home, ".ssh", "id_ed25519"), key, 0o600))
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HOME=") && !strings.HasPrefix(kv, "SSH_AUTH_SOCK=") {
			env = append(env, kv)
		}
	}
	return append(env, "HOME="+home)
}

func writeInventory(t *testing.T, dir string, ports []int) {
	t.Helper()
	var b strings.Builder
	b.WriteString("name: fleet\nenvironments:\n  - name: staging\n    known_hosts: ops/known_hosts\n    hosts:\n")
	for i, port := range ports {
		fmt.Fprintf(&b, "      - {name: web%d, address: 127.0.0.1, port: %d, tags: {role: web}}\n", i+1, port)
	}
	must(t, os.WriteFile(filepath.Join(dir, "opsbook.yaml"), []byte(b.String()), 0o644))
}

// deadPort is a loopback port nothing listens on.
func deadPort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

const fanoutRunbook = "---\nkind: runbook\ntitle: Rolling deploy\ntargets:\n  web: {role: web}\n---\n\n# Rolling deploy\n\n## Steps\n\n" +
	"### Deploy\n\n```sh {id=deploy target=web parallel=2 batch=50% max_failures=1 outputs=BUILD}\necho \"deployed on $OPSBOOK_HOST\"\necho \"BUILD=b-$OPSBOOK_HOST\" >> \"$OPSBOOK_OUTPUT\"\n```\n\n" +
	"### Check\n\n```sh {id=check target=web}\necho \"check $BUILD on $OPSBOOK_HOST\"\n```\n\n" +
	"### Announce\n\n```sh {id=announce}\necho \"announced $BUILD\" >> announced\n```\n"

func opsbook(t *testing.T, dir string, env []string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(testbin.Opsbook(t), args...)
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("opsbook %v: %v", args, err)
	}
	return string(out), code
}

func hostSummary(st *runbook.StepState) string {
	var out []string
	for _, h := range st.Hosts {
		out = append(out, h.Host+"="+string(h.Status))
	}
	return strings.Join(out, " ")
}

// TestFanOutOverSSH runs a rolling deploy on four staging hosts of real
// sshd, one of them down: the deploy tolerates it (max_failures=1), the
// check after it does not and fails the run; once the host is back,
// resume --failed-only runs the check on that host only and the run
// completes.
func TestFanOutOverSSH(t *testing.T) {
	servers := sshdtest.Start(t, 4)
	dir := t.TempDir()
	ports := []int{servers[0].Host.Port, servers[1].Host.Port, servers[2].Host.Port, deadPort(t)}
	env := sshWorkspace(t, dir, ports, servers, fanoutRunbook)

	out, code := opsbook(t, dir, env, "run", "deploy.md", "--env", "staging", "--dry-run")
	for _, want := range []string{"[deploy] target web: 4 host(s), parallel 2, batch 50%, max_failures 1",
		"batch 1: web1 (127.0.0.1:", "batch 2: web3 (127.0.0.1:", "[check] target web: 4 host(s), parallel 1, batch all, max_failures 0"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("dry run (exit %d) lacks %q:\n%s", code, want, out)
		}
	}

	out, code = opsbook(t, dir, env, "run", "deploy.md", "--env", "staging", "-o", "json")
	if code != 1 {
		t.Fatalf("run exit %d, want 1 (failed):\n%s", code, out)
	}
	list, _ := opsbook(t, dir, env, "runs", "-o", "json")
	var runs []runbook.Run
	must(t, json.Unmarshal([]byte(list), &runs))
	id := runs[0].ID
	_, s := runLog(t, dir, id)
	if got := hostSummary(s.Step("deploy")); s.Step("deploy").Status != runbook.StepSucceeded || got != "web1=succeeded web2=succeeded web3=succeeded web4=failed" {
		t.Fatalf("deploy %s, hosts %s", s.Step("deploy").Status, got)
	}
	if h := s.Step("deploy").Host("web4"); !strings.Contains(h.Error, "could not connect") {
		t.Fatalf("web4's failure: %q", h.Error)
	}
	if got := hostSummary(s.Step("check")); s.Step("check").Status != runbook.StepFailed || got != "web1=succeeded web2=succeeded web3=succeeded web4=failed" {
		t.Fatalf("check %s, hosts %s", s.Step("check").Status, got)
	}
	if s.Outputs["BUILD"] != "b-web3" {
		t.Fatalf("deploy's merged output %v, want web3's (the last host that succeeded)", s.Outputs)
	}

	show, _ := opsbook(t, dir, env, "show", id)
	for _, want := range []string{"  web4 (batch 2)", "could not connect"} {
		if !strings.Contains(show, want) {
			t.Fatalf("show lacks %q:\n%s", want, show)
		}
	}

	// The host comes back (at the fourth sshd's port).
	writeInventory(t, dir, []int{ports[0], ports[1], ports[2], servers[3].Host.Port})
	out, code = opsbook(t, dir, env, "resume", id, "--failed-only", "-o", "json")
	if code != 0 {
		t.Fatalf("resume --failed-only exit %d:\n%s", code, out)
	}
	evs, s := runLog(t, dir, id)
	if s.Status != runbook.RunSucceeded || hostSummary(s.Step("check")) != "web1=succeeded web2=succeeded web3=succeeded web4=succeeded" {
		t.Fatalf("after resume: %s, check hosts %s", s.Status, hostSummary(s.Step("check")))
	}
	started := map[string]int{}
	for _, ev := range evs {
		if ev.Type == runbook.EventStepStarted && ev.Step == "check" && ev.Host != "" {
			started[ev.Host]++
		}
	}
	if started["web1"] != 1 || started["web4"] != 2 {
		t.Fatalf("check started per host: %v (web1 must not run again)", started)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "announced")); string(b) != "announced b-web3\n" {
		t.Fatalf("the step after the fan-out saw %q", b)
	}
}

// TestSSHUnknownHostKeyShowsFingerprint: a host whose key is in no
// known_hosts file is refused, and the run log says which key it presented
// and how to accept it.
func TestSSHUnknownHostKeyShowsFingerprint(t *testing.T) {
	servers := sshdtest.Start(t, 2)
	dir := t.TempDir()
	env := sshWorkspace(t, dir, []int{servers[0].Host.Port, servers[1].Host.Port}, servers[:1],
		"---\nkind: runbook\ntitle: Probe\ntargets:\n  web: {role: web}\n---\n\n# Probe\n\n## Steps\n\n### Probe\n\n```sh {id=probe target=web}\ntrue\n```\n")
	out, code := opsbook(t, dir, env, "run", "deploy.md", "--env", "staging")
	if code != 1 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	list, _ := opsbook(t, dir, env, "runs", "-o", "json")
	var runs []runbook.Run
	must(t, json.Unmarshal([]byte(list), &runs))
	_, s := runLog(t, dir, runs[0].ID)
	h := s.Step("probe").Host("web2")
	fp := ssh.FingerprintSHA256(servers[1].HostKey)
	if h == nil || !strings.Contains(h.Error, "host key is not known") || !strings.Contains(h.Error, fp) || !strings.Contains(h.Error, "ops/known_hosts") {
		t.Fatalf("web2's error does not show the fingerprint and where to add it: %+v", h)
	}
	if s.Step("probe").Host("web1").Status != runbook.StepSucceeded {
		t.Fatalf("web1: %+v", s.Step("probe").Host("web1"))
	}
}

// TestFanOutTargetWithoutHostsIsBadInput: the error names the selector and
// the environment, and nothing is recorded.
func TestFanOutTargetWithoutHostsIsBadInput(t *testing.T) {
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "opsbook.yaml"), []byte("name: x\nenvironments:\n  - name: staging\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "rb.md"), []byte("---\nkind: runbook\ntitle: T\ntargets:\n  db: {role: db}\n---\n\n# T\n\n## Steps\n\n### S\n\n```sh {id=s target=db}\ntrue\n```\n"), 0o644))
	out, code := opsbook(t, dir, os.Environ(), "run", "rb.md", "--env", "staging")
	if code != 2 || !strings.Contains(out, "target db (role=db) selects no host of environment staging") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}
