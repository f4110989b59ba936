package labs

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opsbook/opsbook/internal/executor/sshexec/sshdtest"
)

// The two-host TLS lab is two web hosts on one machine, each as a real
// host would be to the runbook: its own network (a network namespace with
// its own loopback, where its nginx listens on the one HTTPS port both
// hosts use, and a veth link to the machine) and its own files at the one
// path both hosts share (an sshd in a mount namespace of its own where
// the host's directory is bind-mounted at that path). The runbook's
// commands reach the host's network through sshd's ForceCommand, which
// enters the host's namespace; its nginx runs there too. The first host's
// veth address plays the public address clients use.

// webHost is one host of the lab: its namespace, its real directory and
// its nginx.
type webHost struct {
	name, netns, dir, addr string
}

type webLab struct {
	*lab
	hosts  []*webHost
	shared string // the path where each host sees its own directory
	port   int
	pki    *pki
	task   string
}

// newWebLab starts two web hosts, each serving cert/key for labName.
func newWebLab(t *testing.T, cert, key string) *webLab {
	t.Helper()
	requireTools(t, "nginx", "openssl", "curl", "ip", "nsenter", "unshare", "mount")
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("the two-host TLS lab needs root (network and mount namespaces); CI=true requires it")
		}
		t.Skip("the two-host TLS lab needs root (network and mount namespaces); skipping")
	}
	w := &webLab{port: 8443}
	base := t.TempDir()
	w.shared = filepath.Join(base, "web")
	must(t, os.Mkdir(w.shared, 0o755))
	// Namespace and link names are the machine's, not the test's: make
	// them unique to this process.
	tag := fmt.Sprintf("%d", os.Getpid()%100000)
	for i := range 2 {
		h := &webHost{name: fmt.Sprintf("web%d", i+1), netns: fmt.Sprintf("oblab%s-%d", tag, i+1), dir: filepath.Join(base, fmt.Sprintf("web%d", i+1))}
		h.addr = fmt.Sprintf("10.231.%d.2", 10+i)
		must(t, os.Mkdir(h.dir, 0o755))
		veth := fmt.Sprintf("obv%s%d", tag, i+1)
		netnsLink(t, h.netns, veth, fmt.Sprintf("10.231.%d.1", 10+i), h.addr)
		// The host's name, as the host itself sees it: fault wrappers
		// read it to act on one host only.
		must(t, os.WriteFile(filepath.Join(h.dir, "hostname"), []byte(h.name+"\n"), 0o644))
		must(t, exec.Command("cp", cert, filepath.Join(h.dir, "live.crt")).Run())
		must(t, exec.Command("cp", key, filepath.Join(h.dir, "live.key")).Run())
		must(t, os.Chmod(filepath.Join(h.dir, "live.key"), 0o600))
		w.hosts = append(w.hosts, h)
	}

	l := &lab{t: t, dir: t.TempDir(), faults: t.TempDir()}
	must(t, os.Chmod(l.faults, 0o755))
	must(t, os.MkdirAll(filepath.Join(l.faults, "bin"), 0o755))
	c, err := sshdtest.Launch(t.TempDir(), 2, sshdtest.Config{PortsPerProcess: 1, Process: func(i int) (extra, wrap []string) {
		force, wrap := namespacedSSHD(w.hosts[i].netns, w.hosts[i].dir, w.shared)
		return []string{"SetEnv SHLVL=1 PATH=" + filepath.Join(l.faults, "bin") + ":" + stdPath, force}, wrap
	}})
	if err != nil {
		t.Fatalf("start the hosts' sshd: %v", err)
	}
	t.Cleanup(c.Stop)
	l.host = c.Servers[0]
	l.env = clientEnv(t, c.ClientKeyFile, "")
	l.opsbook(0, "init")
	must(t, sshdtest.WriteKnownHosts(filepath.Join(l.dir, "ops", "known_hosts"), c.Servers...))
	s0, s1 := c.Servers[0].Host, c.Servers[1].Host
	l.writeConfig(fmt.Sprintf("{name: web1, address: %s, port: %d, user: %s, tags: {role: web}}", s0.Address, s0.Port, s0.User),
		fmt.Sprintf("{name: web2, address: %s, port: %d, user: %s, tags: {role: web}}", s1.Address, s1.Port, s1.User))
	w.lab = l
	for _, h := range w.hosts {
		w.startNginx(t, h)
	}
	return w
}

// startNginx runs the host's nginx in its network namespace. Its
// configuration names the host's real directory, so the same files are
// what the runbook installs at the shared path on that host.
func (w *webLab) startNginx(t *testing.T, h *webHost) {
	t.Helper()
	runNginx(t, h.dir, fmt.Sprint(w.port), "ok from "+h.name, "ip", "netns", "exec", h.netns)
	waitFor(t, "nginx on "+h.name+" to serve", func() bool {
		return exec.Command("ip", "netns", "exec", h.netns, "bash", "-c", fmt.Sprintf("exec 3<>/dev/tcp/127.0.0.1/%d", w.port)).Run() == nil
	})
}

// served is the fingerprint of the certificate h serves for labName on
// its own loopback, verified against ca for the name.
func (w *webLab) served(t *testing.T, h *webHost, ca string) string {
	t.Helper()
	return sh(t, fmt.Sprintf("ip netns exec %s sh -c 'echo | openssl s_client -connect 127.0.0.1:%d -servername %s -CAfile %s -verify_return_error -verify_hostname %s 2>/dev/null | openssl x509 -noout -fingerprint -sha256'",
		h.netns, w.port, labName, ca, labName))
}

// params stages cert and key on every host (at the shared path, so each
// host finds them at the same place) and returns the run's parameters.
func (w *webLab) params(t *testing.T, cert, key string) []string {
	t.Helper()
	for _, h := range w.hosts {
		must(t, exec.Command("cp", cert, filepath.Join(h.dir, "new.crt")).Run())
		must(t, exec.Command("cp", key, filepath.Join(h.dir, "new.key")).Run())
	}
	return []string{"SERVER_NAME=" + labName, "NEW_CERT=" + filepath.Join(w.shared, "new.crt"), "NEW_KEY=" + filepath.Join(w.shared, "new.key"),
		"LIVE_CERT=" + filepath.Join(w.shared, "live.crt"), "LIVE_KEY=" + filepath.Join(w.shared, "live.key"), "CA_FILE=" + w.pki.ca,
		fmt.Sprintf("HTTPS_PORT=%d", w.port), "NGINX_CONF=" + filepath.Join(w.shared, "nginx.conf"),
		"PUBLIC_ADDRESS=" + w.hosts[0].addr, "SUDO="}
}

// TestTLSRotationEveryHost rotates the certificate on two web hosts with
// the library's runbook, unedited, and checks on each host's own network
// that the new certificate is served (openssl s_client, verified for the
// name) — the promise is "on every host", which a one-host lab cannot
// break. Faults, each on the second host only:
//   - a wrong certificate staged there (the other host's is good): the
//     check fails before anything changes anywhere;
//   - nginx failing to reload there, after the first batch (the first
//     host) already serves the new certificate: the run fails and the
//     rollback restores the old certificate on both hosts.
//
// Without the per-host check or the rollback's fan-out, one of the hosts
// is left serving a certificate the run did not end with.
func TestTLSRotationEveryHost(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	oldCert, oldKey := p.issue(t, "old", labName, 20)
	newCert, newKey := p.issue(t, "new", labName, 90)
	w := newWebLab(t, oldCert, oldKey)
	w.pki = p
	w.task = w.newTask("rotate the TLS certificate of the shop nginx", "tls-certificate-rotation")
	before, after := fingerprint(t, oldCert), fingerprint(t, newCert)
	assertServed := func(when, want string) {
		t.Helper()
		for _, h := range w.hosts {
			if got := w.served(t, h, p.ca); got != want {
				t.Errorf("%s: %s serves %s, want %s", when, h.name, got, want)
			}
		}
	}
	assertServed("before the rotation", before)

	// Fault: the second host has a certificate for another name staged.
	wrongCert, wrongKey := p.issue(t, "wrong-name", "other.lab.test", 90)
	params := w.params(t, newCert, newKey)
	must(t, exec.Command("cp", wrongCert, filepath.Join(w.hosts[1].dir, "new.crt")).Run())
	must(t, exec.Command("cp", wrongKey, filepath.Join(w.hosts[1].dir, "new.key")).Run())
	out, _ := w.run(1, w.task, params...)
	if !strings.Contains(out, "is not for "+labName) || !strings.Contains(out, "<- [check-new] failed") {
		t.Errorf("fault wrong certificate on web2: the check did not say so:\n%s", out)
	}
	assertServed("after a wrong certificate on web2", before)

	// Fault: nginx on the second host fails to reload once, after the
	// first host already rotated (batch=25% of two hosts: one at a time);
	// the rollback's reload then works on both.
	params = w.params(t, newCert, newKey)
	w.wrap("nginx", `if [ "$1 $2" = "-s reload" ] && [ "$fault" = reload-fails-on-web2 ] && [ "$(cat `+filepath.Join(w.shared, "hostname")+`)" = web2 ]; then
  : > "$active"; echo "nginx: [emerg] reload failed on web2 (injected)" >&2; exit 1
fi
exec "$real" "$@"`)
	w.inject("reload-fails-on-web2")
	out, _ = w.run(3, w.task, params...)
	if !strings.Contains(out, "reload failed on web2") || !strings.Contains(out, "== rollback succeeded") {
		t.Errorf("fault reload fails on web2: no failed reload and successful rollback:\n%s", out)
	}
	w.inject("")
	assertServed("after the rollback of a rotation that failed on web2", before)

	// The rotation: both hosts serve the new certificate, and the public
	// address answers with it.
	out, run := w.run(0, w.task, params...)
	if run.Status != "succeeded" {
		t.Fatalf("run %s:\n%s", run.Status, outcome(out))
	}
	assertServed("after the rotation", after)
	for _, h := range w.hosts {
		if got := sh(t, fmt.Sprintf("curl -fsS --cacert %s --resolve %s:%d:%s https://%s:%d/", p.ca, labName, w.port, h.addr, labName, w.port)); got != "ok from "+h.name {
			t.Errorf("curl through %s's address: %q", h.name, got)
		}
	}
}
