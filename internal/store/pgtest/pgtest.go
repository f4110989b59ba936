// Package pgtest gives tests a throwaway PostgreSQL: one cluster per test
// binary, created with initdb in a temporary directory and listening on a
// free loopback port, and a fresh database per test.
//
// Use it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }
//
// and in tests call DSN(t). The cluster starts on first use only, so test
// binaries that never ask for PostgreSQL pay nothing. When PostgreSQL is not
// installed, DSN skips the test — or fails it when CI=true, so CI cannot
// silently lose the PostgreSQL half of a suite. OPSBOOK_TEST_POSTGRES, when
// set to a postgres:// URL of a superuser, is used instead of starting a
// cluster.
package pgtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// EnvDSN names the variable holding an existing server's URL.
const EnvDSN = "OPSBOOK_TEST_POSTGRES"

// Cluster is a running throwaway PostgreSQL.
type Cluster struct {
	dir    string // temporary directory: data/, the socket, the log
	bin    string // directory of postgres, pg_basebackup …
	cred   *syscall.Credential
	port   int
	cmd    *exec.Cmd
	exited chan struct{}
	admin  string // URL of the postgres database

	seq atomic.Int64
}

var shared struct {
	sync.Mutex
	inRun   bool
	cluster *Cluster
	err     error
	tried   bool
}

// Run runs the tests of m and stops the cluster if one was started. Its
// result is the exit code for os.Exit.
func Run(m *testing.M) int {
	shared.Lock()
	shared.inRun = true
	shared.Unlock()
	code := m.Run()
	shared.Lock()
	defer shared.Unlock()
	if shared.cluster != nil {
		if err := shared.cluster.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest:", err)
		}
		shared.cluster = nil
	}
	return code
}

// DSN returns the URL of a new, empty database that is dropped when the
// test ends.
func DSN(t testing.TB) string {
	t.Helper()
	if dsn := os.Getenv(EnvDSN); dsn != "" {
		return newDatabase(t, dsn, &fallbackSeq)
	}
	c := sharedCluster(t)
	return c.NewDatabase(t)
}

var fallbackSeq atomic.Int64

func sharedCluster(t testing.TB) *Cluster {
	t.Helper()
	shared.Lock()
	defer shared.Unlock()
	if !shared.inRun {
		t.Fatal("pgtest: call pgtest.Run from TestMain (func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }) so the cluster is stopped")
	}
	if !shared.tried {
		shared.tried = true
		shared.cluster, shared.err = Start()
	}
	requireStarted(t, shared.err, os.Getenv("CI") == "true")
	return shared.cluster
}

// requireStarted ends the test when the cluster could not start: a skip
// when PostgreSQL is simply not installed on a developer's machine, a
// failure on CI or for any other reason.
func requireStarted(t testing.TB, err error, ci bool) {
	t.Helper()
	switch {
	case err == nil:
	case errors.Is(err, ErrNotInstalled) && !ci:
		t.Skipf("pgtest: %v; skipping the PostgreSQL run (set CI=true to make this a failure)", err)
	case errors.Is(err, ErrNotInstalled):
		t.Fatalf("pgtest: %v; CI=true requires the PostgreSQL half of the suite (scripts/test.sh installs it)", err)
	default:
		t.Fatalf("pgtest: %v", err)
	}
}

// versionOf reads the major version from /usr/lib/postgresql/VERSION/bin/initdb.
func versionOf(initdb string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return v
}

// ErrNotInstalled means initdb or postgres was not found.
var ErrNotInstalled = errors.New("PostgreSQL is not installed (no initdb on PATH or in /usr/lib/postgresql/*/bin)")

// Start creates and starts a cluster. Stop it when done.
func Start() (*Cluster, error) {
	initdb, err := exec.LookPath("initdb")
	if err != nil {
		// Debian and Ubuntu keep the server binaries off PATH.
		found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
		if len(found) == 0 {
			return nil, ErrNotInstalled
		}
		slices.SortFunc(found, func(a, b string) int { return versionOf(b) - versionOf(a) })
		initdb = found[0]
	}
	bin := filepath.Dir(initdb)
	if real, err := filepath.EvalSymlinks(initdb); err == nil {
		bin = filepath.Dir(real)
	}
	postgres := filepath.Join(bin, "postgres")
	if _, err := os.Stat(postgres); err != nil {
		if postgres, err = exec.LookPath("postgres"); err != nil {
			return nil, ErrNotInstalled
		}
	}

	cred, err := credential()
	if err != nil {
		return nil, err
	}
	removeAbandoned()
	dir, err := os.MkdirTemp("", dirPattern)
	if err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	// Mark the directory as ours, so that a later run can tell it was
	// abandoned if this process is killed before Stop.
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("start postgres: %w", err)
		}
	}
	data := filepath.Join(dir, "data")
	cmd := exec.Command(initdb, "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}

	// The port is free when picked but may be taken before postgres binds
	// it; try a few.
	var lastErr error
	for range 3 {
		c, err := startPostgres(postgres, dir, data, cred)
		if err == nil {
			c.bin, c.cred = bin, cred
			return c, nil
		}
		lastErr = err
	}
	os.RemoveAll(dir)
	return nil, lastErr
}

const (
	dirPattern = "opsbook-pgtest-"
	ownerFile  = "owner.pid"
)

// removeAbandoned deletes cluster directories of test processes that died
// without stopping their cluster (the cluster itself died with them: see
// startPostgres).
func removeAbandoned() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPattern+"*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue // being set up, or not ours
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			os.RemoveAll(dir)
		}
	}
}

// credential is the postgres user's when running as root: PostgreSQL
// refuses to run as root.
func credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("start postgres as root: %w; create a postgres user or run the tests as another user", err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("start postgres: user postgres has uid %q gid %q", u.Uid, u.Gid)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func startPostgres(postgres, dir, data string, cred *syscall.Credential) (*Cluster, error) {
	port, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	logPath := filepath.Join(dir, "postgres.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	defer logFile.Close()
	// postgres runs as our child rather than daemonised by pg_ctl, with a
	// parent-death signal: if the test binary crashes or is killed, the
	// kernel stops the cluster (SIGQUIT = immediate shutdown).
	cmd := exec.Command(postgres, "-D", data, "-p", strconv.Itoa(port), "-k", dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
		"-c", "full_page_writes=off", "-c", "max_connections=300", "-c", "shared_buffers=32MB")
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	c := &Cluster{
		dir: dir, port: port, cmd: cmd, exited: make(chan struct{}),
		admin: fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port),
	}
	go func() { cmd.Wait(); close(c.exited) }()

	db, err := sql.Open("pgx", c.admin)
	if err != nil {
		c.kill()
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	defer db.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err = db.PingContext(ctx)
		cancel()
		if err == nil {
			return c, nil
		}
		select {
		case <-c.exited:
			log, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("postgres exited on start:\n%s", log)
		default:
		}
		if time.Now().After(deadline) {
			c.kill()
			log, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("postgres not ready after 30s: %v\n%s", err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Port is the loopback TCP port the cluster listens on.
func (c *Cluster) Port() int { return c.port }

// DataDir is the cluster's data directory (owned by the postgres user when
// the tests run as root).
func (c *Cluster) DataDir() string { return filepath.Join(c.dir, "data") }

// Admin is the URL of the cluster's postgres database as the superuser
// postgres.
func (c *Cluster) Admin() string { return c.admin }

// Bin is the directory of the server's programs (postgres, pg_ctl,
// pg_basebackup).
func (c *Cluster) Bin() string { return c.bin }

// StartReplica makes a streaming replica of c with pg_basebackup -R (the
// primary's defaults allow replication connections from loopback) and
// starts it on its own free port. Stop it when done. The backup asks for
// an immediate checkpoint: the default spread one holds it for a minute
// or more.
func (c *Cluster) StartReplica() (*Cluster, error) {
	dir, err := os.MkdirTemp("", dirPattern)
	if err != nil {
		return nil, fmt.Errorf("start replica: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start replica: %w", err)
	}
	if c.cred != nil {
		if err := os.Chown(dir, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("start replica: %w", err)
		}
	}
	data := filepath.Join(dir, "data")
	cmd := exec.Command(filepath.Join(c.bin, "pg_basebackup"), "-h", "127.0.0.1", "-p", strconv.Itoa(c.port), "-U", "postgres",
		"-D", data, "-R", "-X", "stream", "--no-sync", "--checkpoint=fast")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pg_basebackup: %w\n%s", err, out)
	}
	var lastErr error
	for range 3 {
		r, err := startPostgres(filepath.Join(c.bin, "postgres"), dir, data, c.cred)
		if err == nil {
			r.bin, r.cred = c.bin, c.cred
			return r, nil
		}
		lastErr = err
	}
	os.RemoveAll(dir)
	return nil, lastErr
}

// FlushedDataDir returns the data directory of this test binary's shared
// cluster after a CHECKPOINT has written every committed change into its
// files, for tests that look for plaintext in the database files. Values
// over about 2 KB may be stored compressed (TOAST), so such a search only
// proves something about short values. It fails the test when the server
// is external (OPSBOOK_TEST_POSTGRES).
func FlushedDataDir(t testing.TB) string {
	t.Helper()
	if os.Getenv(EnvDSN) != "" {
		t.Fatalf("pgtest: the data directory of %s is not known", EnvDSN)
	}
	c := sharedCluster(t)
	db, err := sql.Open("pgx", c.admin)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	defer db.Close()
	if _, err := db.Exec(`CHECKPOINT`); err != nil {
		t.Fatalf("pgtest: checkpoint: %v", err)
	}
	return filepath.Join(c.dir, "data")
}

// AdminDSN is the URL of the cluster's postgres database, as superuser:
// for programs (benchmarks) that make databases of their own.
func (c *Cluster) AdminDSN() string { return c.admin }

// NewDatabase creates an empty database, dropped when t ends, and returns
// its URL.
func (c *Cluster) NewDatabase(t testing.TB) string {
	t.Helper()
	return newDatabase(t, c.admin, &c.seq)
}

func newDatabase(t testing.TB, admin string, seq *atomic.Int64) string {
	t.Helper()
	name := fmt.Sprintf("t_%d_%d", os.Getpid(), seq.Add(1))
	db, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE DATABASE ` + name); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", admin)
		if err != nil {
			t.Errorf("pgtest: %v", err)
			return
		}
		defer db.Close()
		if _, err := db.Exec(`DROP DATABASE IF EXISTS ` + name + ` WITH (FORCE)`); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	return withDatabase(admin, name)
}

// withDatabase replaces the database name in a postgres:// URL.
func withDatabase(dsn, name string) string {
	rest := dsn
	query := ""
	if i := strings.IndexByte(rest, '?'); i >= 0 {
		rest, query = rest[:i], rest[i:]
	}
	scheme := strings.Index(rest, "://") + 3
	if slash := strings.IndexByte(rest[scheme:], '/'); slash >= 0 {
		rest = rest[:scheme+slash]
	}
	return rest + "/" + name + query
}

// Stop shuts the cluster down (fast shutdown: connections are dropped) and
// deletes its files.
func (c *Cluster) Stop() error {
	c.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-c.exited:
	case <-time.After(15 * time.Second):
		c.kill()
	}
	if err := os.RemoveAll(c.dir); err != nil {
		return fmt.Errorf("remove postgres test cluster: %w", err)
	}
	return nil
}

func (c *Cluster) kill() {
	c.cmd.Process.Kill()
	<-c.exited
}
