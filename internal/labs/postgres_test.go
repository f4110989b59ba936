package labs

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opsbook/opsbook/internal/store/pgtest"
)

// pgLab is a primary, its streaming replica (pg_basebackup -R) and a
// scratch server, each a throwaway cluster on a loopback port.
type pgLab struct {
	primary, replica, scratch *pgtest.Cluster
}

func startPG(t *testing.T) *pgtest.Cluster {
	t.Helper()
	c, err := pgtest.Start()
	if err != nil {
		if os.Getenv("CI") != "true" && strings.Contains(err.Error(), "not installed") {
			t.Skipf("%v; skipping the lab (set CI=true to make this a failure)", err)
		}
		t.Fatalf("start PostgreSQL: %v", err)
	}
	t.Cleanup(func() { c.Stop() })
	return c
}

func newPGLab(t *testing.T) *pgLab {
	t.Helper()
	p := &pgLab{primary: startPG(t)}
	psql(t, p.primary, "postgres", ordersSchema)
	r, err := p.primary.StartReplica()
	if err != nil {
		t.Fatalf("start the replica: %v", err)
	}
	t.Cleanup(func() { r.Stop() })
	p.replica = r
	p.scratch = startPG(t)
	// The replica has replayed everything the primary wrote.
	waitFor(t, "the replica to replay the schema", func() bool {
		return psqlTry(p.replica, "orders", "select count(*) from shop.orders") == "40"
	})
	return p
}

// ordersSchema is a small production-like database: two roles (an owner
// and a read-only one, absent on the scratch server), two schemas, tables
// with and without rows.
const ordersSchema = `
create role app_owner;
create role reporting;
create database orders owner app_owner;
\c orders
create schema shop authorization app_owner;
set role app_owner;
create table shop.customers (id int primary key, email text not null, name text not null);
create table shop.orders (id int primary key, customer_id int references shop.customers, amount numeric(10,2), note text);
create table public.audit_log (id bigserial primary key, at timestamptz default '2026-01-01', what text);
create table public.empty_table (id int);
insert into shop.customers select i, 'user' || i || '@example.com', 'Customer ' || i from generate_series(1, 20) i;
insert into shop.orders select i, 1 + i % 20, i * 1.25, case when i % 3 = 0 then 'gift' end from generate_series(1, 40) i;
insert into public.audit_log (what) select 'event ' || i from generate_series(1, 15) i;
reset role;
grant usage on schema shop to reporting;
grant select on all tables in schema shop to reporting;
`

// psql runs SQL as the superuser on a cluster's database.
func psql(t *testing.T, c *pgtest.Cluster, db, sql string) string {
	t.Helper()
	out, err := psqlErr(c, db, sql)
	if err != nil {
		t.Fatalf("psql %s: %v\n%s", db, err, out)
	}
	return out
}

func psqlTry(c *pgtest.Cluster, db, sql string) string {
	out, err := psqlErr(c, db, sql)
	if err != nil {
		return "error: " + out
	}
	return out
}

func psqlErr(c *pgtest.Cluster, db, sql string) (string, error) {
	cmd := execCommand("psql", "-h", "127.0.0.1", "-p", fmt.Sprint(c.Port()), "-U", "postgres", "-d", db,
		"-XAtq", "-v", "ON_ERROR_STOP=1", "-f", "-")
	cmd.Stdin = strings.NewReader(sql)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// tableDigest is, per user table, its exact row count and the MD5 of its
// rows in a stable order: the independent measure of "the same data".
func tableDigest(t *testing.T, c *pgtest.Cluster, db string) string {
	t.Helper()
	queries := psql(t, c, db, `select format('select %L || '' '' || count(*) || '' '' || coalesce(md5(string_agg(t::text, E''\n'' order by t::text)), ''-'') from %I.%I t;',
	  n.nspname || '.' || c.relname, n.nspname, c.relname)
	  from pg_class c join pg_namespace n on n.oid = c.relnamespace
	  where c.relkind in ('r', 'p') and n.nspname not in ('pg_catalog', 'information_schema') order by 1`)
	return psql(t, c, db, queries)
}

func (p *pgLab) backupParams(backupDir string) []string {
	return []string{
		"DATABASE=orders",
		"SOURCE_HOST=127.0.0.1", fmt.Sprintf("SOURCE_PORT=%d", p.replica.Port()),
		"RESTORE_HOST=127.0.0.1", fmt.Sprintf("RESTORE_PORT=%d", p.scratch.Port()),
		"BACKUP_DIR=" + backupDir,
	}
}

// TestBackupRestoreLab runs the library's backup runbook, unedited, against
// a primary, its replica and a scratch server; restores the dump it kept
// independently and compares every table with the primary; then injects the
// faults the runbook's checks exist for, each of which must roll back; and
// finally mutates every checked step (rehearse --mutate): no check may pass
// when its action does nothing.
func TestBackupRestoreLab(t *testing.T) {
	requireTools(t, "psql", "pg_dump", "pg_restore", "pg_dumpall")
	t.Parallel()
	p := newPGLab(t)
	l := newLab(t, "backup")
	task := l.newTask("nightly backup of the orders postgres database", "postgres-backup-restore")
	backupDir := t.TempDir()
	params := p.backupParams(backupDir)

	out, run := l.run(0, task, params...)
	if run.Status != "succeeded" {
		t.Fatalf("run %s:\n%s", run.Status, out)
	}

	// Independently: the kept dump restores (with its roles) to the
	// primary's data, table by table; the replica replays again.
	dump := filepath.Join(backupDir, "orders-"+run.ID+".dump")
	check := startPG(t)
	psql(t, check, "postgres", "create role app_owner; create role reporting; create database orders_check")
	sh(t, fmt.Sprintf("pg_restore -h 127.0.0.1 -p %d -U postgres -d orders_check --exit-on-error %s", check.Port(), dump))
	want := tableDigest(t, p.primary, "orders")
	if got := tableDigest(t, check, "orders_check"); got != want || strings.Count(want, "\n") != 3 {
		t.Fatalf("the kept dump restores to\n%s\nbut the primary has\n%s", got, want)
	}
	if owner := psql(t, check, "orders_check", "select tableowner from pg_tables where tablename = 'orders'"); owner != "app_owner" {
		t.Errorf("restored owner %q, want app_owner (the dump keeps owners)", owner)
	}
	if got := psql(t, p.scratch, "postgres", "select string_agg(rolname, ',' order by rolname) from pg_roles where rolname in ('app_owner', 'reporting')"); got != "app_owner,reporting" {
		t.Errorf("roles restored on the scratch server: %q", got)
	}
	if got := psql(t, p.scratch, "postgres", "select count(*) from pg_database where datname = 'restore_check_orders'"); got != "0" {
		t.Errorf("the scratch copy was not dropped")
	}
	assertReplaying(t, p)

	// A tester connected to the previous scratch copy does not block the
	// next run (dropdb --force).
	psql(t, p.scratch, "postgres", "create database restore_check_orders")
	blocker := startSession(t, p.scratch, "restore_check_orders")

	// Faults: each breaks what a step claims to check.
	l.wrap("pg_dump", `"$real" "$@"
if [ "$fault" = corrupt-dump ]; then
  for a in "$@"; do if [ "$prev" = -f ]; then f=$a; fi; prev=$a; done
  size=$(stat -c %s "$f")
  head -c 64 /dev/urandom | dd of="$f" bs=1 seek=$((size / 2)) conv=notrunc status=none
fi`)
	l.wrap("pg_restore", `"$real" "$@"
for a in "$@"; do
  case "$prev" in -h) h=$a ;; -p) p=$a ;; -d) d=$a ;; esac; prev=$a
done
if [ -n "$d" ] && [ "$fault" = row-missing-after-restore ]; then
  psql -h "$h" -p "$p" -U postgres -d "$d" -Xqc 'delete from shop.orders where id = 7'
fi
if [ -n "$d" ] && [ "$fault" = row-changed-after-restore ]; then
  psql -h "$h" -p "$p" -U postgres -d "$d" -Xqc "update shop.customers set email = 'x@example.com' where id = 3"
fi`)
	for _, f := range []struct{ fault, step string }{
		{"corrupt-dump", ""}, // caught by pg_restore --list or by the restore
		{"row-missing-after-restore", "compare"},
		{"row-changed-after-restore", "compare"}, // same row count: only the checksum sees it
	} {
		l.inject(f.fault)
		out, run := l.run(3, task, params...)
		if f.step != "" && !strings.Contains(out, "<- ["+f.step+"] failed") {
			t.Errorf("fault %s: step %s did not fail:\n%s", f.fault, f.step, out)
		}
		if !strings.Contains(out, "== rollback succeeded") {
			t.Errorf("fault %s: no successful rollback:\n%s", f.fault, out)
		}
		assertReplaying(t, p)
		if _, err := os.Stat(filepath.Join(backupDir, "orders-"+run.ID+".dump")); !os.IsNotExist(err) {
			t.Errorf("fault %s: the failed backup's dump is still usable: %v", f.fault, err)
		}
		if _, err := os.Stat(filepath.Join(backupDir, "orders-"+run.ID+".dump.failed")); err != nil && f.fault != "corrupt-dump" {
			t.Errorf("fault %s: the failed dump was not kept for investigation: %v", f.fault, err)
		}
	}
	l.inject("")
	blocker.stop()

	// Fault: the source is the primary, not a replica (replay cannot be
	// paused, the dump would not match the counts): the precheck stops it.
	bad := append(append([]string(nil), params...), fmt.Sprintf("SOURCE_PORT=%d", p.primary.Port()))
	out, _ = l.run(1, task, bad...)
	if !strings.Contains(out, "is not a replica") {
		t.Errorf("source is the primary: precheck did not say so:\n%s", out)
	}

	// Every check of the runbook fails when its action does nothing.
	var args []string
	for _, kv := range params {
		args = append(args, "--param", kv)
	}
	out = l.opsbook(-1, append([]string{"rehearse", task, "--env", "staging", "--mutate", "--yes"}, args...)...)
	if !strings.Contains(out, "7 mutant(s), 0 survived") {
		t.Fatalf("rehearse --mutate:\n%s", out)
	}
	assertReplaying(t, p)
}

func assertReplaying(t *testing.T, p *pgLab) {
	t.Helper()
	if got := psql(t, p.replica, "orders", "select pg_is_wal_replay_paused()"); got != "f" {
		t.Errorf("replay on the replica is still paused")
	}
}
