package labs

import (
	"fmt"
	"strings"
	"testing"

	"github.com/opsbook/opsbook/internal/store/pgtest"
)

// shopSchema is production for the refresh lab: the tables the library's
// sanitising SQL knows, with real-looking personal data, and an orders
// table declared free of personal data.
const shopSchema = `
create database shop;
\c shop
create table users (id int primary key, email text, full_name text, phone text, password_hash text, last_login_ip inet, created_at date default '2025-01-01');
create table addresses (id int primary key, user_id int, line1 text, line2 text, postcode text);
create table payments (id int primary key, user_id int, card_last4 text, iban text, cardholder text, amount numeric);
create table sessions (id int primary key, user_id int, token text);
create table password_reset_tokens (id int primary key, token text);
create table audit_log (id int primary key, what text);
create table orders (id int primary key, user_id int, total numeric, note text);
insert into users select i, 'person' || i || '@mail.example.com', 'Real Person ' || i, '+49 30 1234' || i, 'hash', ('10.0.0.' || i)::inet from generate_series(1, 12) i;
insert into addresses select i, i, i || ' Real Street', 'Flat ' || i, '1011' || i from generate_series(1, 12) i;
insert into payments select i, i, '4242', 'DE8937040044053201300' || (i % 10), 'Real Person ' || i, i * 10 from generate_series(1, 12) i;
insert into sessions select i, i, md5(i::text) from generate_series(1, 5) i;
insert into password_reset_tokens values (1, 'secret');
insert into audit_log values (1, 'person1@mail.example.com logged in');
insert into orders select i, 1 + i % 12, i * 3, 'order ' || i from generate_series(1, 30) i;
`

const shopSafe = "public.users.created_at public.addresses.user_id public.payments.user_id public.payments.amount public.orders.*"

// piiLeft is the independent scan: every value of every text-like column
// of every table that looks like an e-mail address other than the
// sanitised ones, or an IBAN.
func piiLeft(t *testing.T, c *pgtest.Cluster, db string) string {
	t.Helper()
	queries := psql(t, c, db, `select format('select %L || '': '' || count(*) from %I.%I where %I::text ~* ''[a-z0-9._+-]+@[a-z0-9.-]+\.[a-z]{2,}'' and %I::text !~* ''@example\.invalid$'' or %I::text ~ ''[A-Z]{2}[0-9]{2}[A-Z0-9]{11,}'' having count(*) > 0;',
		table_name || '.' || column_name, table_schema, table_name, column_name, column_name, column_name)
	from information_schema.columns where table_schema = 'public' and data_type in ('text', 'character varying', 'jsonb', 'json')`)
	return psql(t, c, db, queries)
}

// TestTestRefreshLab refreshes a test database from production with the
// library's runbook, unedited, then checks independently that no personal
// data is left in any column of any table and that the old copy is kept;
// faults: a new table of real e-mail addresses, a new date_of_birth column,
// an e-mail address in a column declared safe — each must roll back and
// leave the old test database as it was; a tester connected to the old
// copy must not block the swap. Then every checked step is mutated.
func TestTestRefreshLab(t *testing.T) {
	requireTools(t, "psql", "pg_dump", "pg_restore")
	t.Parallel()
	prod, test := startPG(t), startPG(t)
	psql(t, prod, "postgres", shopSchema)
	psql(t, test, "postgres", "create database shop_test")
	psql(t, test, "shop_test", "create table old_copy_marker (x int); insert into old_copy_marker values (1)")
	l := newLab(t, "backup")
	task := l.newTask("refresh the shop test database from sanitised production data", "postgres-test-refresh")
	params := []string{"SOURCE_HOST=127.0.0.1", fmt.Sprintf("SOURCE_PORT=%d", prod.Port()), "SOURCE_DB=shop",
		"TARGET_HOST=127.0.0.1", fmt.Sprintf("TARGET_PORT=%d", test.Port()), "TARGET_DB=shop_test",
		"SAFE_COLUMNS=" + shopSafe, "WORK_DIR=" + t.TempDir()}

	oldCopyIntact := func(fault string) {
		t.Helper()
		if got := psqlTry(test, "shop_test", "select count(*) from old_copy_marker"); got != "1" {
			t.Errorf("fault %s: the old test database is not the old copy any more: %s", fault, got)
		}
		if got := psql(t, test, "postgres", "select count(*) from pg_database where datname = 'shop_test_new'"); got != "0" {
			t.Errorf("fault %s: the unsanitised copy shop_test_new is left", fault)
		}
	}
	for _, f := range []struct{ fault, inject, undo, says string }{
		{"new table of real e-mail addresses",
			"create table marketing_contacts (id int, contact text); insert into marketing_contacts values (1, 'real.person@mail.example.com')",
			"drop table marketing_contacts", "undeclared column public.marketing_contacts.contact"},
		{"new date_of_birth column",
			"alter table users add column date_of_birth date; update users set date_of_birth = '1980-01-01'",
			"alter table users drop column date_of_birth", "undeclared column public.users.date_of_birth"},
		{"e-mail address in a column declared safe",
			"update orders set note = 'call real.person@mail.example.com' where id = 4",
			"update orders set note = 'order 4' where id = 4", "personal data in public.orders.note: 1"},
	} {
		psql(t, prod, "shop", f.inject)
		out, _ := l.run(3, task, params...)
		if !strings.Contains(out, f.says) || !strings.Contains(out, "<- [sanitise] failed") {
			t.Errorf("fault %s: the sanitise check did not say %q:\n%s", f.fault, f.says, out)
		}
		oldCopyIntact(f.fault)
		psql(t, prod, "shop", f.undo)
	}

	// A tester connected to the old copy does not block the swap.
	tester := startSession(t, test, "shop_test")
	out, run := l.run(0, task, params...)
	tester.stop()
	if run.Status != "succeeded" {
		t.Fatalf("run %s:\n%s", run.Status, out)
	}
	if got := piiLeft(t, test, "shop_test"); got != "" {
		t.Errorf("personal data left in the refreshed test database:\n%s", got)
	}
	if got, want := psql(t, test, "shop_test", "select count(*) from users"), "12"; got != want {
		t.Errorf("users in the test database: %s, want %s", got, want)
	}
	if got := psql(t, test, "shop_test_previous", "select count(*) from old_copy_marker"); got != "1" {
		t.Errorf("the previous copy is not kept: %s", got)
	}
	if got := psql(t, test, "postgres", "select string_agg(datname || '=' || datallowconn, ',' order by datname) from pg_database where datname like 'shop_test%'"); got != "shop_test=true,shop_test_previous=true" {
		t.Errorf("databases after the swap: %s", got)
	}

	var args []string
	for _, kv := range params {
		args = append(args, "--param", kv)
	}
	out = l.opsbook(-1, append([]string{"rehearse", task, "--env", "staging", "--mutate", "--yes"}, args...)...)
	if !strings.Contains(out, "5 mutant(s), 0 survived") {
		t.Fatalf("rehearse --mutate:\n%s", out)
	}
	if got := piiLeft(t, test, "shop_test"); got != "" {
		t.Errorf("personal data left after the mutants:\n%s", got)
	}
}
