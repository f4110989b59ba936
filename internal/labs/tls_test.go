package labs

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const labName = "shop.lab.test"

// pki is a throwaway CA and the certificates the TLS lab serves and
// stages, made with the openssl command line.
type pki struct {
	dir, ca string
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	p := &pki{dir: t.TempDir()}
	p.ca = filepath.Join(p.dir, "ca.crt")
	sh(t, fmt.Sprintf(`cd %s
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.crt -days 30 -subj /CN=opsbook-lab-ca 2>/dev/null`, p.dir))
	return p
}

// issue makes a key and a certificate signed by the CA for name, valid for
// days, and returns their paths.
func (p *pki) issue(t *testing.T, file, name string, days int) (cert, key string) {
	t.Helper()
	sh(t, fmt.Sprintf(`cd %[1]s
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout %[2]s.key -out %[2]s.csr -subj /CN=%[3]s 2>/dev/null
printf 'subjectAltName=DNS:%[3]s\n' > %[2]s.ext
openssl x509 -req -in %[2]s.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days %[4]d -extfile %[2]s.ext -out %[2]s.crt 2>/dev/null`,
		p.dir, file, name, days))
	return filepath.Join(p.dir, file+".crt"), filepath.Join(p.dir, file+".key")
}

// nginxLab is a real nginx serving labName over TLS on a loopback port.
type nginxLab struct {
	conf, cert, key string
	port            int
}

func startNginx(t *testing.T, cert, key string) *nginxLab {
	t.Helper()
	dir := t.TempDir()
	n := &nginxLab{conf: filepath.Join(dir, "nginx.conf"), cert: filepath.Join(dir, "live.crt"), key: filepath.Join(dir, "live.key"), port: freePortOn(t, "127.0.0.1")}
	sh(t, fmt.Sprintf("cp %s %s && cp %s %s && chmod 600 %s", cert, n.cert, key, n.key, n.key))
	runNginx(t, dir, fmt.Sprintf("127.0.0.1:%d", n.port), "ok")
	waitFor(t, "nginx to listen", func() bool {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", n.port))
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return n
}

// runNginx starts an nginx whose files are in dir (nginx.conf, which it
// writes, and live.crt and live.key, which it serves) listening on listen
// with TLS for labName and answering greeting, under the command wrap
// when given (ip netns exec …). It stops it when the test ends.
func runNginx(t *testing.T, dir, listen, greeting string, wrap ...string) {
	t.Helper()
	conf := fmt.Sprintf(`daemon off;
master_process on;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  server {
    listen %[2]s ssl;
    server_name %[3]s;
    ssl_certificate %[1]s/live.crt;
    ssl_certificate_key %[1]s/live.key;
    location / { return 200 "%[4]s\n"; }
  }
}
`, dir, listen, labName, greeting)
	must(t, os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644))
	argv := append(append([]string(nil), wrap...), "nginx", "-c", filepath.Join(dir, "nginx.conf"), "-p", dir, "-e", filepath.Join(dir, "error.log"))
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	out, err := os.Create(filepath.Join(dir, "stderr.log"))
	must(t, err)
	cmd.Stdout, cmd.Stderr = out, out
	must(t, cmd.Start())
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGQUIT)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		out.Close()
	})
}

// served is the SHA-256 fingerprint of the certificate nginx serves for
// labName, read with openssl s_client.
func (n *nginxLab) served(t *testing.T, ca string) string {
	t.Helper()
	return sh(t, fmt.Sprintf("echo | openssl s_client -connect 127.0.0.1:%d -servername %s -CAfile %s -verify_return_error 2>/dev/null | openssl x509 -noout -fingerprint -sha256",
		n.port, labName, ca))
}

func fingerprint(t *testing.T, cert string) string {
	t.Helper()
	return sh(t, "openssl x509 -in "+cert+" -noout -fingerprint -sha256")
}

// TestTLSRotationLab rotates the certificate of a real nginx with the
// library's runbook, unedited, checks with openssl s_client and curl that
// the new one is served, and injects the faults the runbook's checks exist
// for: a certificate for the wrong name, one about to expire, a key that
// does not match, nginx failing to reload, and a reload that never takes
// effect. Then every checked step is mutated: no check passes when its
// action does nothing.
func TestTLSRotationLab(t *testing.T) {
	requireTools(t, "nginx", "openssl", "curl")
	t.Parallel()
	p := newPKI(t)
	oldCert, oldKey := p.issue(t, "old", labName, 20)
	newCert, newKey := p.issue(t, "new", labName, 90)
	n := startNginx(t, oldCert, oldKey)
	l := newLab(t, "web")
	task := l.newTask("rotate the TLS certificate of the shop nginx", "tls-certificate-rotation")
	params := func(cert, key string) []string {
		return []string{"SERVER_NAME=" + labName, "NEW_CERT=" + cert, "NEW_KEY=" + key,
			"LIVE_CERT=" + n.cert, "LIVE_KEY=" + n.key, "CA_FILE=" + p.ca, fmt.Sprintf("HTTPS_PORT=%d", n.port),
			"NGINX_CONF=" + n.conf, "PUBLIC_ADDRESS=127.0.0.1", "SUDO="}
	}
	before := fingerprint(t, oldCert)
	if got := n.served(t, p.ca); got != before {
		t.Fatalf("nginx serves %s before the rotation, want the old certificate %s", got, before)
	}

	// Faults caught before anything changes: the run fails (exit 1) at
	// the check, the old certificate is still served.
	wrongCert, wrongKey := p.issue(t, "wrong-name", "other.lab.test", 90)
	soonCert, soonKey := p.issue(t, "expiring", labName, 10)
	for _, f := range []struct{ fault, cert, key, says string }{
		{"certificate for the wrong name", wrongCert, wrongKey, "is not for " + labName},
		{"certificate expiring in 10 days", soonCert, soonKey, "expires within 30 days"},
		{"key of another certificate", newCert, oldKey, "does not belong to the new certificate"},
	} {
		out, _ := l.run(1, task, params(f.cert, f.key)...)
		if !strings.Contains(out, f.says) || !strings.Contains(out, "<- [check-new] failed") {
			t.Errorf("fault %s: the check did not say %q:\n%s", f.fault, f.says, out)
		}
		if got := n.served(t, p.ca); got != before {
			t.Errorf("fault %s: nginx serves %s, want the old certificate", f.fault, got)
		}
	}

	// Faults during the reload: the rotation rolls back (exit 3) and the
	// old certificate is served again.
	l.wrap("nginx", `if [ "$1 $2" = "-s reload" ]; then
  case "$fault" in
  reload-fails-once) : > "$active"; echo "nginx: [emerg] reload failed (injected)" >&2; exit 1 ;;
  reload-ignored) exit 0 ;;
  esac
fi
exec "$real" "$@"`)
	for _, fault := range []string{"reload-fails-once", "reload-ignored"} {
		l.inject(fault)
		out, _ := l.run(3, task, params(newCert, newKey)...)
		if !strings.Contains(out, "<- [rotate] failed") || !strings.Contains(out, "== rollback succeeded") {
			t.Errorf("fault %s: no failed rotate and successful rollback:\n%s", fault, out)
		}
		l.inject("")
		if got := n.served(t, p.ca); got != before {
			t.Errorf("fault %s: after the rollback nginx serves %s, want the old certificate", fault, got)
		}
	}

	// The rotation, and independent proof: s_client and curl see the new
	// certificate, verified against the CA for the host name.
	out, run := l.run(0, task, params(newCert, newKey)...)
	if run.Status != "succeeded" {
		t.Fatalf("run %s:\n%s", run.Status, outcome(out))
	}
	if got, want := n.served(t, p.ca), fingerprint(t, newCert); got != want {
		t.Fatalf("after the rotation nginx serves %s, want the new certificate %s", got, want)
	}
	if got := sh(t, fmt.Sprintf("curl -fsS --cacert %s --resolve %s:%d:127.0.0.1 https://%s:%d/", p.ca, labName, n.port, labName, n.port)); got != "ok" {
		t.Errorf("curl: %q", got)
	}

	// Every check fails when its action does nothing (the rehearsal's
	// rotation is undone by the rollback document before each mutant).
	var args []string
	for _, kv := range params(newCert, newKey) {
		args = append(args, "--param", kv)
	}
	out = l.opsbook(-1, append([]string{"rehearse", task, "--env", "staging", "--mutate", "--yes"}, args...)...)
	if !strings.Contains(out, "3 mutant(s), 0 survived") {
		t.Fatalf("rehearse --mutate:\n%s", outcome(out))
	}
}
