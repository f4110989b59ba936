package labs

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// The names clients use for the lab's database server: the rotation must
// cover both.
const (
	pgTLSName  = "db.lab.test"
	pgTLSAlias = "orders-db.lab.test"
)

// issueSAN makes a key and a certificate signed by the PKI's CA for the
// names (all in subjectAltName), valid for days, and returns their paths.
func (p *pki) issueSAN(t *testing.T, file string, days int, names ...string) (cert, key string) {
	t.Helper()
	var san []string
	for _, n := range names {
		san = append(san, "DNS:"+n)
	}
	sh(t, fmt.Sprintf(`cd %[1]s
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout %[2]s.key -out %[2]s.csr -subj /CN=%[3]s 2>/dev/null
printf 'subjectAltName=%[4]s\n' > %[2]s.ext
openssl x509 -req -in %[2]s.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days %[5]d -extfile %[2]s.ext -out %[2]s.crt 2>/dev/null`,
		p.dir, file, names[0], strings.Join(san, ","), days))
	return filepath.Join(p.dir, file+".crt"), filepath.Join(p.dir, file+".key")
}

// pgTLSLab is a PostgreSQL cluster serving TLS with PostgreSQL's own
// defaults: ssl = on, server.crt and server.key in the data directory.
type pgTLSLab struct {
	port     int
	data     string
	osUser   string // the user the server runs as (postgres under root)
	uid, gid int
}

func startPGTLS(t *testing.T, cert, key string) *pgTLSLab {
	t.Helper()
	c := startPG(t)
	s := &pgTLSLab{port: c.Port(), data: c.DataDir()}
	fi, err := os.Stat(s.data)
	must(t, err)
	st := fi.Sys().(*syscall.Stat_t)
	s.uid, s.gid = int(st.Uid), int(st.Gid)
	u, err := user.LookupId(strconv.Itoa(s.uid))
	must(t, err)
	s.osUser = u.Username
	s.stage(t, cert, filepath.Join(s.data, "server.crt"), 0o644)
	s.stage(t, key, filepath.Join(s.data, "server.key"), 0o600)
	psql(t, c, "postgres", "alter system set ssl = on")
	psql(t, c, "postgres", "select pg_reload_conf()")
	waitFor(t, "the server to serve TLS", func() bool {
		return psqlTry(c, "postgres", "show ssl") == "on"
	})
	return s
}

// stage copies a file for the server's user with a mode.
func (s *pgTLSLab) stage(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(from)
	must(t, err)
	must(t, os.WriteFile(to, b, mode))
	must(t, os.Chmod(to, mode))
	must(t, os.Chown(to, s.uid, s.gid))
}

// served is the SHA-256 fingerprint of the certificate the server serves
// for name, read with openssl s_client -starttls postgres and verified
// against the CA for that host name.
func (s *pgTLSLab) served(t *testing.T, ca, name string) string {
	t.Helper()
	return sh(t, fmt.Sprintf("openssl s_client -starttls postgres -connect 127.0.0.1:%d -CAfile %s -verify_return_error -verify_hostname %s </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256",
		s.port, ca, name))
}

// TestPGTLSRotationLab rotates the TLS certificate of a real PostgreSQL
// server with the library's runbook, unedited, checks with openssl
// s_client -starttls postgres and psql sslmode=verify-full that the new one
// is served for every client name, and injects the faults the runbook's
// checks exist for. Then every checked step is mutated: no check passes
// when its action does nothing.
func TestPGTLSRotationLab(t *testing.T) {
	requireTools(t, "psql", "openssl")
	t.Parallel()
	p := newPKI(t)
	oldCert, oldKey := p.issueSAN(t, "old", 20, pgTLSName, pgTLSAlias)
	newCert, newKey := p.issueSAN(t, "new", 90, pgTLSName, pgTLSAlias)
	s := startPGTLS(t, oldCert, oldKey)
	l := newLab(t, "db")
	task := l.newTask("rotate the TLS certificate of orders-db", "postgres-tls-rotation")

	// The staged files, as an operator leaves them on the database host:
	// the key mode 600 and owned by the server's user.
	staged := t.TempDir()
	must(t, os.Chmod(staged, 0o755))
	stage := func(name, from string, mode os.FileMode) string {
		to := filepath.Join(staged, name)
		s.stage(t, from, to, mode)
		return to
	}
	params := func(cert, key string) []string {
		return []string{"SERVER_NAMES=" + pgTLSName + " " + pgTLSAlias, "NEW_CERT=" + cert, "NEW_KEY=" + key,
			"CA_FILE=" + p.ca, fmt.Sprintf("DB_PORT=%d", s.port), "DB_HOST=127.0.0.1", "PG_SUDO=",
			"PG_OS_USER=" + s.osUser, "SUDO=", "PUBLIC_ADDRESS=127.0.0.1"}
	}
	goodCert, goodKey := stage("new.crt", newCert, 0o644), stage("new.key", newKey, 0o600)

	before := fingerprint(t, oldCert)
	if got := s.served(t, p.ca, pgTLSName); got != before {
		t.Fatalf("the server serves %s before the rotation, want the old certificate %s", got, before)
	}

	// Faults caught before anything changes: the run fails (exit 1) at
	// the check, the old certificate is still served.
	oneName, oneNameKey := p.issueSAN(t, "one-name", 90, pgTLSName)
	soonCert, soonKey := p.issueSAN(t, "expiring", 10, pgTLSName, pgTLSAlias)
	other := newPKI(t)
	strangerCert, strangerKey := other.issueSAN(t, "stranger", 90, pgTLSName, pgTLSAlias)
	for _, f := range []struct{ fault, cert, key, says string }{
		{"certificate missing one of the client host names", stage("one-name.crt", oneName, 0o644), stage("one-name.key", oneNameKey, 0o600), "is not for " + pgTLSAlias},
		{"certificate expiring in 10 days", stage("expiring.crt", soonCert, 0o644), stage("expiring.key", soonKey, 0o600), "expires within 30 days"},
		{"key of another certificate", goodCert, stage("old.key", oldKey, 0o600), "does not belong to the new certificate"},
		{"certificate signed by an unknown CA", stage("stranger.crt", strangerCert, 0o644), stage("stranger.key", strangerKey, 0o600), "does not chain to " + p.ca},
		{"staged key readable by others", goodCert, stage("open.key", newKey, 0o644), `"644 ` + s.osUser + `": it must be mode 600`},
		{"new files staged over the live ones", filepath.Join(s.data, "server.crt"), goodKey, "is the server's live file"},
	} {
		out, _ := l.run(1, task, params(f.cert, f.key)...)
		if !strings.Contains(out, f.says) || !strings.Contains(out, "<- [check-new] failed") {
			t.Errorf("fault %s: the check did not say %q:\n%s", f.fault, f.says, out)
		}
		if got := s.served(t, p.ca, pgTLSName); got != before {
			t.Errorf("fault %s: the server serves %s, want the old certificate", f.fault, got)
		}
	}

	// Faults at the reload: the rotation rolls back (exit 3) and the old
	// certificate is served again. A live key others can read is refused
	// by PostgreSQL on reload, which keeps the old certificate while
	// pg_reload_conf() returns t: only the served fingerprint shows it.
	l.wrap("install", `"$real" "$@"
if [ "$fault" = live-key-readable-by-others ] && [ "$2" = 0600 ]; then
  for dest; do :; done
  chmod 0644 "$dest"
fi`)
	l.wrap("psql", `if [[ "$*" == *"pg_reload_conf()"* ]]; then
  case "$fault" in
  reload-refused-once) : > "$active"; echo 'ERROR:  permission denied for function pg_reload_conf (injected)' >&2; exit 1 ;;
  reload-lost-once)
    : > "$active"; args=()
    for a in "$@"; do args+=("${a//pg_reload_conf()/true}"); done
    exec "$real" "${args[@]}" ;;
  esac
fi
exec "$real" "$@"`)
	for _, f := range []struct{ fault, says string }{
		{"live-key-readable-by-others", "the server still serves another certificate"},
		{"reload-refused-once", "permission denied for function pg_reload_conf"},
		{"reload-lost-once", "did not process the reload within 10 s"},
	} {
		l.inject(f.fault)
		out, _ := l.run(3, task, params(goodCert, goodKey)...)
		if !strings.Contains(out, f.says) || !strings.Contains(out, "<- [rotate] failed") || !strings.Contains(out, "== rollback succeeded") {
			t.Errorf("fault %s: no failed rotate saying %q and successful rollback:\n%s", f.fault, f.says, out)
		}
		l.inject("")
		if got := s.served(t, p.ca, pgTLSName); got != before {
			t.Errorf("fault %s: after the rollback the server serves %s, want the old certificate", f.fault, got)
		}
		if f.fault == "live-key-readable-by-others" {
			// The fault is real: PostgreSQL itself refused the key.
			if log, _ := os.ReadFile(filepath.Join(filepath.Dir(s.data), "postgres.log")); !strings.Contains(string(log), "SSL configuration was not reloaded") {
				t.Errorf("fault %s: the server log does not say the SSL configuration was not reloaded:\n%s", f.fault, log)
			}
		}
		if mode := sh(t, "stat -c %a "+filepath.Join(s.data, "server.key")); mode != "600" {
			t.Errorf("fault %s: after the rollback the live key has mode %s", f.fault, mode)
		}
	}

	// The rotation, and independent proof: s_client sees the new
	// certificate for both names, verified against the CA, and psql
	// connects with sslmode=verify-full by both names.
	out, run := l.run(0, task, params(goodCert, goodKey)...)
	if run.Status != "succeeded" {
		t.Fatalf("run %s:\n%s", run.Status, outcome(out))
	}
	want := fingerprint(t, newCert)
	for _, name := range []string{pgTLSName, pgTLSAlias} {
		if got := s.served(t, p.ca, name); got != want {
			t.Errorf("after the rotation the server serves %s for %s, want the new certificate %s", got, name, want)
		}
		got := sh(t, fmt.Sprintf(`psql "host=%s hostaddr=127.0.0.1 port=%d user=postgres dbname=postgres sslmode=verify-full sslrootcert=%s" -XAtc "select ssl from pg_stat_ssl where pid = pg_backend_pid()"`, name, s.port, p.ca))
		if got != "t" {
			t.Errorf("psql sslmode=verify-full as %s: %q", name, got)
		}
	}
	if got := sh(t, "stat -c '%a %U' "+filepath.Join(s.data, "server.key")); got != "600 "+s.osUser {
		t.Errorf("the live key is %q, want 600 %s", got, s.osUser)
	}
	if got := fingerprint(t, filepath.Join(s.data, "server.crt.previous")); got != before {
		t.Errorf("the previous certificate kept for the rollback is %s, want the old one", got)
	}

	// Every check fails when its action does nothing (the rehearsal's
	// rotation is undone by the rollback document before each mutant).
	var args []string
	for _, kv := range params(goodCert, goodKey) {
		args = append(args, "--param", kv)
	}
	out = l.opsbook(-1, append([]string{"rehearse", task, "--env", "staging", "--mutate", "--yes"}, args...)...)
	if !strings.Contains(out, "3 mutant(s), 0 survived") {
		t.Fatalf("rehearse --mutate:\n%s", outcome(out))
	}
	if got := s.served(t, p.ca, pgTLSName); got != before {
		t.Errorf("after rehearse --mutate the server serves %s, want the old certificate restored by the rollback", got)
	}
}
