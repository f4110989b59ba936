package labs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The PITR lab is a primary on loopback that archives its WAL with an
// archive_command into a directory, started by the lab itself (pgtest's
// clusters take no archive settings), and one sshd host with the backup
// role. The runs use PG_SUDO="runuser -u postgres --" and a PG_BIN of the
// lab's own: the server's programs, with pg_basebackup and pg_ctl wrapped.
// The wrappers are the lab's clock: after the base backup they write rows
// only the archived WAL carries ("before the target"); when the runbook
// starts the restored copy they record what the primary holds at that
// moment (nothing has been written since the runbook's restore point) and
// write and archive more rows ("after the target"), which the copy must not
// have; when it stops the copy they record what the copy holds. The faults
// are injected there and in the archive_command, by name, from the file
// ctl/fault.

// pitrLab is the lab's directories and the primary.
type pitrLab struct {
	*lab
	t                                    *testing.T // also before the workspace exists
	task                                 string
	base, ctl, archive, backups, restore string
	bin, realBin                         string // the runs' PG_BIN, the real one
	primary                              pgConn
	restorePort                          int
	child                                *exec.Cmd
	cred                                 *syscall.Credential
}

// pitrDigestSQL makes, per table of the database, the query of its exact
// row count and the MD5 of its rows in a stable order (as tableDigest).
const pitrDigestSQL = `select format('select %L || '' '' || count(*) || '' '' || coalesce(md5(string_agg(t::text, E''\n'' order by t::text)), ''-'') from %I.%I t;', n.nspname || '.' || c.relname, n.nspname, c.relname) from pg_class c join pg_namespace n on n.oid = c.relnamespace where c.relkind in ('r', 'p') and n.nspname not in ('pg_catalog', 'information_schema') order by 1`

// pitrWrappers are the lab's pg_basebackup and pg_ctl (bash; @NAME@ are
// filled in). They run as the postgres user, as the runbook's PG_SUDO makes
// them.
var pitrWrappers = map[string]string{
	"pg_basebackup": `#!/bin/bash
set -e
real=@REAL@/pg_basebackup
ctl=@CTL@
fault=$(cat "$ctl/fault" 2>/dev/null || true)
primary() { psql -h 127.0.0.1 -p @PORT@ -U postgres -d orders -XAtq -v ON_ERROR_STOP=1 "$@"; }
"$real" "$@"
for a in "$@"; do if [ "$prev" = -D ]; then dir=$a; fi; prev=$a; done
run=$(basename "$(dirname "$dir")")
# Written after the backup, before the target: only the archive has them.
primary -c "insert into public.lab_writes (what) select 'after the backup of $run' from generate_series(1, 3)" \
  -c "update shop.customers set name = 'Renamed after the backup' where id = 2"
case "$fault" in
corrupt-base-backup)
  # Bit rot in the backup's copy of a table file.
  printf 'XXXX' | dd of="$dir/$(primary -c "select pg_relation_filepath('shop.customers')")" bs=1 seek=4000 conv=notrunc status=none ;;
archive-stops-after-backup)
  # The archive's disk fills up once the backup is taken.
  touch "$ctl/archive-down" ;;
backup-wal-missing)
  # The segment the backup starts in is lost from the archive.
  rm "@ARCH@/$(sed -n 's/^START WAL LOCATION: .* (file \(.*\))$/\1/p' "$dir/backup_label")" ;;
esac
`,
	"pg_ctl": `#!/bin/bash
set -e
real=@REAL@/pg_ctl
ctl=@CTL@
arch=@ARCH@
fault=$(cat "$ctl/fault" 2>/dev/null || true)
primary() { psql -h 127.0.0.1 -p @PORT@ -U postgres -d orders -XAtq -v ON_ERROR_STOP=1 "$@"; }
digest() { psql "$@" -XAt -v ON_ERROR_STOP=1 -c "$(cat @CTL@/digest.sql)" | psql "$@" -XAt -v ON_ERROR_STOP=1; }
for a in "$@"; do
  case "$prev" in -D) dir=$a ;; -l) log=$a ;; esac
  prev=$a
done
case "$1" in
start)
  work=$(dirname "$log")
  run=$(basename "$work")
  # The primary at the target: nothing was written since the restore point.
  digest -h 127.0.0.1 -p @PORT@ -U postgres -d orders > "$ctl/at-target"
  lsn=$(sed -n 's/^lsn //p' "$work/target")
  seg=$(primary -c "select pg_walfile_name('$lsn')")
  case "$fault" in
  missing-wal-segment)
    rm "$arch/$seg" ;;
  corrupt-wal-segment)
    # The 8 kB page that ends with the restore point, overwritten.
    lo=$((0x${lsn#*/}))
    head -c 8192 /dev/urandom | dd of="$arch/$seg" bs=8192 seek=$(( (lo - 1) % $(stat -c %s "$arch/$seg") / 8192 )) conv=notrunc status=none ;;
  recovery-stops-short)
    sed -i "s/^recovery_target_name = .*/recovery_target = 'immediate'/" "$dir/postgresql.auto.conf" ;;
  recovery-overshoots)
    sed -i "s/^recovery_target_name = .*/recovery_target_name = 'lab-after-target'/" "$dir/postgresql.auto.conf" ;;
  copy-corrupted-after-verify)
    # Bit rot on the restore host, after pg_verifybackup: a row's text changes, not its length.
    perl -pi -e 's/event 7/EVENT 7/' "$dir/$(primary -c "select pg_relation_filepath('public.audit_log')")" ;;
  esac
  # Written after the target, and archived: a recovery past the target
  # would replay them.
  primary -c "insert into public.lab_writes (what) select 'after the target of $run' from generate_series(1, 3)" \
    -c "update shop.customers set email = 'changed-after-target@example.com' where id = 4" \
    -c "select pg_create_restore_point('lab-after-target')" >/dev/null
  last=$(primary -c 'select pg_walfile_name(pg_switch_wal())')
  for i in $(seq 100); do
    if [ -f "$arch/$last" ] || [ -f "$ctl/archive-down" ]; then break; fi
    sleep 0.1
  done
  ;;
stop)
  # What the restored copy holds, seen by the lab.
  if "$real" status -D "$dir" >/dev/null; then
    port=$(sed -n 's/^port = //p' "$dir/postgresql.auto.conf" | tail -1)
    digest -h "$dir" -p "$port" -U postgres -d orders > "$ctl/restored"
    psql -h "$dir" -p "$port" -U postgres -d orders -XAt -v ON_ERROR_STOP=1 -c "
      select (select count(*) from public.lab_writes where what like 'after the backup of %') || ' ' ||
             (select count(*) from public.lab_writes where what like 'after the target of %') || ' ' ||
             (select name from shop.customers where id = 2) || ' / ' || (select email from shop.customers where id = 4)" > "$ctl/restored-facts"
  fi ;;
esac
exec "$real" "$@"
`,
}

// newPITRLab starts the primary, the host and the workspace with the task
// opsbook new generates for a point-in-time restore.
func newPITRLab(t *testing.T) *pitrLab {
	t.Helper()
	requireTools(t, "psql", "runuser", "perl")
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("the PITR lab needs root (runuser to the postgres user); CI=true requires it")
		}
		t.Skip("the PITR lab needs root (runuser to the postgres user); skipping")
	}
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_verifybackup")
	if len(found) == 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("pg_verifybackup is not installed (postgresql); CI=true requires the PITR lab (scripts/test.sh installs it)")
		}
		t.Skip("pg_verifybackup is not installed; skipping the PITR lab")
	}
	p := &pitrLab{t: t, realBin: filepath.Dir(found[len(found)-1])}
	u, err := user.Lookup("postgres")
	must(t, err)
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	p.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}

	// The postgres user must reach every directory: not under t.TempDir,
	// whose parent only root may enter.
	p.base, err = os.MkdirTemp("", "opsbook-pitrlab-")
	must(t, err)
	must(t, os.Chmod(p.base, 0o755))
	p.ctl, p.archive, p.backups = filepath.Join(p.base, "ctl"), filepath.Join(p.base, "archive"), filepath.Join(p.base, "backups")
	p.restore = filepath.Join(p.base, "scratch", "pitr-check")
	p.bin = filepath.Join(p.base, "bin")
	primaryDir := filepath.Join(p.base, "primary")
	for _, dir := range []string{p.ctl, p.archive, p.backups, filepath.Dir(p.restore), primaryDir} {
		must(t, os.Mkdir(dir, 0o755))
		must(t, os.Chown(dir, uid, gid))
	}
	must(t, os.Mkdir(p.bin, 0o755))
	t.Cleanup(func() {
		if t.Failed() {
			for _, f := range []string{filepath.Join(primaryDir, "postgres.log")} {
				if b, err := os.ReadFile(f); err == nil {
					t.Logf("%s:\n%s", f, b)
				}
			}
		}
		if _, err := os.Stat(filepath.Join(p.restore, "postmaster.pid")); err == nil {
			cmd := exec.Command(filepath.Join(p.realBin, "pg_ctl"), "stop", "-D", p.restore, "-m", "immediate")
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
			cmd.Dir = "/"
			cmd.Run()
		}
		if p.child != nil {
			p.child.Process.Kill()
			p.child.Wait()
		}
		os.RemoveAll(p.base)
	})

	// PG_BIN: the server's programs, two of them wrapped.
	entries, err := os.ReadDir(p.realBin)
	must(t, err)
	for _, e := range entries {
		must(t, os.Symlink(filepath.Join(p.realBin, e.Name()), filepath.Join(p.bin, e.Name())))
	}
	must(t, os.WriteFile(filepath.Join(p.ctl, "digest.sql"), []byte(pitrDigestSQL), 0o644))
	p.inject("")

	// The primary: archive_command copies each segment once, fails while
	// ctl/archive-down exists, and copies only the first 8 kB of a segment
	// (and succeeds) while ctl/archive-truncates exists.
	data := filepath.Join(primaryDir, "data")
	// 1 MB WAL segments: the runbook reads the size, and the lab copies
	// sixteen times less into its archive.
	p.asPostgres(t, filepath.Join(p.realBin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync", "--wal-segsize=1")
	appendFile(t, filepath.Join(data, "postgresql.conf"), fmt.Sprintf(`
listen_addresses = '127.0.0.1'
unix_socket_directories = '%s'
fsync = off
max_connections = 40
shared_buffers = 16MB
archive_mode = on
archive_command = 'test ! -e %[2]s/archive-down && test ! -f %[3]s/%%f && if test -e %[2]s/archive-truncates; then head -c 8192 %%p > %[3]s/%%f; else cp %%p %[3]s/%%f; fi'
`, primaryDir, p.ctl, p.archive))
	for attempt := 0; ; attempt++ {
		p.primary = pgConn{"127.0.0.1", freePortOn(t, "127.0.0.1")}
		if err := p.startPrimary(data, primaryDir); err == nil {
			break
		} else if attempt == 4 {
			t.Fatal(err)
		}
	}
	psql(t, p.primary, "postgres", ordersSchema+`
create table public.lab_writes (id serial primary key, what text not null);
`)
	p.restorePort = freePortOn(t, "127.0.0.1")

	for name, body := range pitrWrappers {
		script := strings.NewReplacer("@REAL@", p.realBin, "@CTL@", p.ctl, "@ARCH@", p.archive,
			"@PORT@", strconv.Itoa(p.primary.port)).Replace(body)
		path := filepath.Join(p.bin, name)
		must(t, os.Remove(path))
		must(t, os.WriteFile(path, []byte(script), 0o755))
	}

	p.lab = newLab(t, "backup")
	// Commands run as postgres (runuser) start in the workspace: let them.
	must(t, os.Chmod(filepath.Dir(p.dir), 0o755))
	must(t, os.Chmod(p.dir, 0o755))
	p.task = p.newTask("point-in-time restore of orders-db", "postgres-pitr")
	return p
}

// startPrimary runs the primary's postmaster as the lab's child (it dies
// with the test binary) and waits until it answers.
func (p *pitrLab) startPrimary(data, dir string) error {
	appendFile(p.t, filepath.Join(data, "postgresql.conf"), fmt.Sprintf("port = %d\n", p.primary.port))
	log, err := os.OpenFile(filepath.Join(dir, "postgres.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer log.Close()
	cmd := exec.Command(filepath.Join(p.realBin, "postgres"), "-D", data)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred, Pdeathsig: syscall.SIGQUIT, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if exec.Command(filepath.Join(p.realBin, "pg_isready"), "-q", "-h", "127.0.0.1", "-p", strconv.Itoa(p.primary.port)).Run() == nil {
			p.child = cmd
			return nil
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(filepath.Join(dir, "postgres.log"))
			return fmt.Errorf("the primary exited on start:\n%s", b)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			return errors.New("the primary is not ready after 30 s")
		}
	}
}

func (p *pitrLab) asPostgres(t *testing.T, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	cmd.Dir = "/"
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

// inject names the fault the wrappers and the archive_command act on; ""
// removes it (and lets the archive work again).
func (p *pitrLab) inject(fault string) {
	must(p.t, os.WriteFile(filepath.Join(p.ctl, "fault"), []byte(fault+"\n"), 0o644))
	switch fault {
	case "":
		os.Remove(filepath.Join(p.ctl, "archive-down"))
		os.Remove(filepath.Join(p.ctl, "archive-truncates"))
	case "archive-down", "archive-truncates":
		must(p.t, os.WriteFile(filepath.Join(p.ctl, fault), nil, 0o644))
	}
}

func (p *pitrLab) params(extra ...string) []string {
	return append([]string{
		"DATABASE=orders",
		"PRIMARY_HOST=127.0.0.1", fmt.Sprintf("PRIMARY_PORT=%d", p.primary.port),
		"ARCHIVE_DIR=" + p.archive, "BACKUP_DIR=" + p.backups,
		"RESTORE_PGDATA=" + p.restore, fmt.Sprintf("RESTORE_PORT=%d", p.restorePort),
		"PG_BIN=" + p.bin, "PG_SUDO=runuser -u postgres --",
		"CHECKPOINT=fast", "ARCHIVE_WAIT_SECONDS=5", "RECOVERY_TIMEOUT_SECONDS=30", "LOCK_TIMEOUT=2s",
	}, extra...)
}

func (p *pitrLab) read(name string) string {
	b, err := os.ReadFile(filepath.Join(p.ctl, name))
	if err != nil {
		p.t.Fatalf("the lab's record %s: %v", name, err)
	}
	return strings.TrimSpace(string(b))
}

// TestPITRLab runs the library's physical backup and point-in-time restore
// runbook, unedited, against a primary archiving its WAL; checks with psql
// that the copy it restored held exactly what the primary held at the
// target. TestPITRFaults injects the faults the runbook's checks exist for.
func TestPITRLab(t *testing.T) {
	t.Parallel()
	p := newPITRLab(t)

	out, run := p.run(0, p.task, p.params()...)
	if run.Status != "succeeded" {
		t.Fatalf("run %s:\n%s", run.Status, outcome(out))
	}

	// Independently: the copy the runbook restored (recorded by the lab's
	// pg_ctl when the runbook stopped it) equals the primary as it was at
	// the target, table by table; it has the rows written after the backup
	// (only the archive had them) and not those written after the target;
	// the primary has moved on since.
	atTarget, restored := p.read("at-target"), p.read("restored")
	if restored != atTarget || strings.Count(atTarget, "\n") != 4 {
		t.Fatalf("the restored copy holds\n%s\nbut the primary at the target held\n%s", restored, atTarget)
	}
	if now := digestOf(t, p.primary, "orders"); now == atTarget {
		t.Fatalf("the primary did not change after the target: the lab proves nothing\n%s", now)
	}
	if facts := p.read("restored-facts"); facts != "3 0 Renamed after the backup / user4@example.com" {
		t.Errorf("restored copy: %q, want the 3 rows and the rename written after the backup, none of the target's later writes", facts)
	}
	// The kept base backup verifies on its own against the archive; the
	// scratch copy is gone.
	kept := filepath.Join(p.backups, run.ID, "base")
	p.asPostgres(t, filepath.Join(p.realBin, "pg_verifybackup"), "--wal-directory="+p.archive, kept)
	if _, err := os.Stat(p.restore); !os.IsNotExist(err) {
		t.Errorf("the scratch copy %s is still there: %v", p.restore, err)
	}
	if target := sh(t, "cat "+filepath.Join(p.backups, run.ID, "target")); !strings.Contains(target, "name opsbook-pitr-"+run.ID) {
		t.Errorf("target file: %q", target)
	}

	// Fault: RESTORE_PGDATA is a live data directory (the primary's): the
	// precheck refuses before anything is deleted.
	live := filepath.Join(p.base, "primary", "data")
	out, _ = p.run(1, p.task, p.params("RESTORE_PGDATA="+live)...)
	if !strings.Contains(out, "is no scratch copy of this runbook") {
		t.Errorf("RESTORE_PGDATA is the primary's data directory: the precheck did not refuse:\n%s", out)
	}
	if got := psql(t, p.primary, "orders", "select count(*) from shop.orders"); got != "40" {
		t.Errorf("the primary after the faults: %s orders", got)
	}
}

// pitrFaults break what a step of the runbook claims to check; each must
// fail the run at that step and roll back. The lab's wrappers and its
// archive_command inject them by name.
var pitrFaults = [][]struct{ fault, step string }{{
	{"archive-down", "archive-check"},          // archive_command fails: no segment is ever archived
	{"archive-truncates", "archive-check"},     // archive_command succeeds but keeps only the first 8 kB of each segment
	{"corrupt-base-backup", "basebackup"},      // a file of the base backup damaged: pg_verifybackup
	{"archive-stops-after-backup", "target"},   // the target lies past the end of the archived WAL
	{"copy-corrupted-after-verify", "compare"}, // a row's text changed in the copy, same length, same WAL position
	{"backup-wal-missing", "basebackup"},       // the segment the backup starts in lost from the archive: pg_verifybackup --wal-directory
	{"long-transaction", "target"},             // a transaction holding a table's lock longer than LOCK_TIMEOUT
}, {
	{"missing-wal-segment", "restore"},  // the target's segment deleted from the archive
	{"corrupt-wal-segment", "restore"},  // the WAL page holding the restore point overwritten in the archive
	{"recovery-stops-short", "restore"}, // recovery stops at consistency, before the target
	{"recovery-overshoots", "restore"},  // recovery goes on past the target to a later restore point
}}

// TestPITRFaults runs the runbook under each named fault, in two labs at
// once (the runs mostly wait).
func TestPITRFaults(t *testing.T) {
	t.Parallel()
	for i, group := range pitrFaults {
		t.Run(fmt.Sprintf("lab%d", i+1), func(t *testing.T) {
			t.Parallel()
			p := newPITRLab(t)
			for _, f := range group {
				p.inject("")
				p.inject(f.fault)
				var app *pitrSession
				if f.fault == "long-transaction" {
					app = p.openTransaction(t)
				}
				out, run := p.run(3, p.task, p.params()...)
				if app != nil {
					app.end()
				}
				if !strings.Contains(out, "<- ["+f.step+"] failed") {
					t.Errorf("fault %s: step %s did not fail:\n%s", f.fault, f.step, out)
				}
				if !strings.Contains(out, "== rollback succeeded") {
					t.Errorf("fault %s: no successful rollback:\n%s", f.fault, out)
				}
				if _, err := os.Stat(p.restore); !os.IsNotExist(err) {
					t.Errorf("fault %s: the scratch copy is still there: %v", f.fault, err)
				}
				if _, err := os.Stat(filepath.Join(p.backups, run.ID)); !os.IsNotExist(err) {
					t.Errorf("fault %s: the failed run's backup is still usable: %v", f.fault, err)
				}
				if _, err := os.Stat(filepath.Join(p.backups, run.ID+".failed")); err != nil {
					t.Errorf("fault %s: the failed run's files were not kept for investigation: %v", f.fault, err)
				}
			}
		})
	}
}

// pitrSession is an application's session in the middle of a transaction
// that wrote to a table and neither commits nor rolls back.
type pitrSession struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
}

func (p *pitrLab) openTransaction(t *testing.T) *pitrSession {
	t.Helper()
	cmd := exec.Command("psql", "-h", "127.0.0.1", "-p", strconv.Itoa(p.primary.port), "-U", "postgres", "-d", "orders", "-Xq")
	in, err := cmd.StdinPipe()
	must(t, err)
	must(t, cmd.Start())
	s := &pitrSession{cmd: cmd, stdin: in}
	t.Cleanup(s.end)
	_, err = io.WriteString(in, "begin;\ninsert into public.lab_writes (what) values ('a long transaction');\n")
	must(t, err)
	waitFor(t, "the long transaction to hold its lock", func() bool {
		return psqlTry(p.primary, "orders", "select count(*) from pg_locks l join pg_class c on c.oid = l.relation where c.relname = 'lab_writes' and l.mode = 'RowExclusiveLock' and l.pid <> pg_backend_pid()") == "1"
	})
	return s
}

func (s *pitrSession) end() {
	s.stdin.Close()
	s.cmd.Process.Kill()
	s.cmd.Wait()
}

// TestPITRMutants rehearses the runbook with --mutate in its own lab: no
// check passes when its action does nothing.
func TestPITRMutants(t *testing.T) {
	t.Parallel()
	p := newPITRLab(t)
	var args []string
	for _, kv := range p.params() {
		args = append(args, "--param", kv)
	}
	// An application commits a row every 20 ms throughout: the target's
	// checksums must still be exactly the restored copy's (the tables are
	// locked for the instant the restore point is written and its snapshot
	// exported).
	stop := p.startWriter(t)
	out := p.opsbook(-1, append([]string{"rehearse", p.task, "--env", "staging", "--mutate", "--yes"}, args...)...)
	written := stop()
	if !strings.Contains(out, "6 mutant(s), 0 survived") {
		t.Fatalf("rehearse --mutate:\n%s", outcome(out))
	}
	if written < 100 {
		t.Errorf("the application committed only %d rows during the rehearsal: the primary was not busy", written)
	}
}

// startWriter starts an application session that commits a row every
// 20 ms; stop ends it and returns how many rows it committed.
func (p *pitrLab) startWriter(t *testing.T) (stop func() int) {
	t.Helper()
	cmd := exec.Command("psql", "-h", "127.0.0.1", "-p", strconv.Itoa(p.primary.port), "-U", "postgres", "-d", "orders", "-Xq")
	in, err := cmd.StdinPipe()
	must(t, err)
	must(t, cmd.Start())
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				if _, err := io.WriteString(in, "insert into public.lab_writes (what) values ('the application');\n"); err != nil {
					return
				}
			}
		}
	}()
	stopped := false
	stop = func() int {
		if !stopped {
			stopped = true
			close(done)
			<-finished
			in.Close()
			cmd.Wait()
		}
		n, _ := strconv.Atoi(psql(t, p.primary, "orders", "select count(*) from public.lab_writes where what = 'the application'"))
		return n
	}
	t.Cleanup(func() { stop() })
	return stop
}

// digestOf is tableDigest for any server the test reaches.
func digestOf(t *testing.T, c pgServer, db string) string {
	t.Helper()
	return psql(t, c, db, psql(t, c, db, pitrDigestSQL))
}
