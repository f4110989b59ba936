// Package store keeps runs, their event logs and run leases in a SQL
// database: embedded SQLite (the default, one file) or PostgreSQL. One
// implementation serves both; each dialect has its own numbered goose
// migrations, applied on Open. One file per entity: runs.go, events.go,
// leases.go, and the server's users.go, teams.go, audit.go…
//
// Tests run against both dialects with storetest.ForEachDialect; the
// PostgreSQL half uses a throwaway cluster from pgtest.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// Dialect names returned by Store.Dialect.
const (
	DialectSQLite   = "sqlite"
	DialectPostgres = "postgres"
)

//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrationFiles embed.FS

// Store is the durable state of opsbook. It is safe for concurrent use.
type Store struct {
	db      *sql.DB
	dialect string
	// auditAnchor authenticates the audit log's head (see SetAuditAnchor).
	auditAnchor AuditAnchor
	path        string // SQLite database file; empty for PostgreSQL
	dsn         string // PostgreSQL URL, for the connection that LISTENs

	// appendDB is the one SQLite connection event appends go through; nil
	// on PostgreSQL, where they use db. One connection keeps its page cache
	// valid from one append to the next (a second connection would re-read
	// every page the first one changed) and lets each commit choose its own
	// synchronous level (see sqlitePragmas and appendSync).
	appendDB *sql.DB

	// appendMu serialises this process's event appends on SQLite, which
	// has one writer at a time anyway: waiting here is a queue, waiting in
	// SQLite's busy handler is sleep-and-poll with growing sleeps. It also
	// guards appendSync.
	appendMu sync.Mutex
	// appendSync is the synchronous level appendDB's connection was last
	// set to; "" when unknown (so it is set again before the next append).
	appendSync string

	stmtMu sync.Mutex
	stmts  map[*sql.DB]*appendStmts // see appendStatements

	direct directStmts // see appendDirect; guarded by appendMu

	ckpt *checkpointer // SQLite, once output is appended; guarded by appendMu
}

// sqlitePragmas are applied to every SQLite connection; the synchronous
// level is FULL on opening and set per commit on the append connection.
//
// Durability. Every event survives kill -9 of the process once
// AppendEvents returns: in WAL mode a commit is in the WAL file (the OS page
// cache) before it returns, whatever the synchronous level. Surviving power
// loss takes an fsync per commit (synchronous=FULL), which costs about half
// a millisecond here and would halve output throughput, so the store
// fsyncs only where it matters (see fsyncedEvent):
//   - an event that may be followed by something irreversible commits with
//     FULL: a step start is on disk before its command is spawned, a
//     decision before it is acted on;
//   - a batch holding only results (output, verification, step finished,
//     retry) commits with NORMAL (PRAGMA synchronous is switched on the
//     append connection just before its transaction begins). The next fsynced
//     commit covers it too (fsync syncs the whole WAL), so power loss can
//     only take the results recorded since the last fsynced event — the step
//     they belong to then looks interrupted, and resume re-runs it only if it
//     is idempotent, otherwise asks the operator. That is the outcome of
//     losing power during the step, so nothing unsafe follows.
//
// PostgreSQL follows the same rule with synchronous_commit = off for
// result-only transactions.
//
// busy_timeout comes first: pragmas apply in order, and switching a fresh
// file to WAL needs a lock that another process opening it at the same
// moment may hold; without the timeout already set that is SQLITE_BUSY.
var sqlitePragmas = []string{
	"busy_timeout(10000)",
	"journal_mode(WAL)",
	"foreign_keys(1)",
	// A reader can hold back checkpoints while output pours in; once the
	// WAL has been checkpointed, shrink it back instead of keeping its peak.
	"journal_size_limit(67108864)",
}

// Open opens (creating if needed) and migrates the store named by dsn:
// "postgres://…" or "postgresql://…" for PostgreSQL, otherwise a SQLite
// file given as "sqlite:PATH" or a plain path. Missing directories of a
// SQLite path are created.
func Open(ctx context.Context, dsn string) (*Store, error) {
	var s *Store
	var err error
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		s, err = openPostgres(ctx, dsn)
	default:
		s, err = openSQLite(ctx, strings.TrimPrefix(dsn, "sqlite:"))
	}
	if err != nil {
		return nil, err
	}
	if err := s.migrate(ctx); err != nil {
		s.Close() // both SQLite pools, not just the main one
		return nil, err
	}
	return s, nil
}

// OpenReadOnly opens an existing SQLite store for reading only: nothing is
// created, locked or migrated, so a store on a read-only or full file
// system can still be listed and shown. A store whose write-ahead log
// cannot be opened for reading there (no -shm file and no way to make one)
// is read as it was last checkpointed (SQLite's immutable mode). Writes
// fail.
func OpenReadOnly(ctx context.Context, path string) (*Store, error) {
	path = strings.TrimPrefix(path, "sqlite:")
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("open sqlite store %q: the path must not contain '?' or '#'", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	if _, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("open sqlite store %s read-only: %w", abs, err)
	}
	var lastErr error
	for _, mode := range []string{"mode=ro", "mode=ro&immutable=1"} {
		db, err := sql.Open("sqlite", "file:"+abs+"?"+mode+"&_pragma=busy_timeout(5000)")
		if err != nil {
			return nil, fmt.Errorf("open sqlite store %s read-only: %w", abs, err)
		}
		db.SetMaxOpenConns(4)
		var n int
		if err = db.QueryRowContext(ctx, "SELECT count(*) FROM runs").Scan(&n); err == nil {
			return &Store{db: db, dialect: DialectSQLite, path: abs}, nil
		}
		db.Close()
		lastErr = err
	}
	return nil, fmt.Errorf("open sqlite store %s read-only: %w", abs, lastErr)
}

func openPostgres(ctx context.Context, dsn string) (*Store, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to postgres store %s: %w (check that the server is running and the URL is right)", redactDSN(dsn), err)
	}
	// Bounded so that hundreds of concurrent runs queue here instead of
	// exceeding the server's max_connections (100 by default).
	db.SetMaxOpenConns(32)
	db.SetMaxIdleConns(16)
	return &Store{db: db, dialect: DialectPostgres, dsn: dsn}, nil
}

func openSQLite(ctx context.Context, path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("open sqlite store: empty path; give a file path or sqlite:PATH")
	}
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("open sqlite store %q: the path must not contain '?' or '#'", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return nil, fmt.Errorf("create directory for store %s: %w", abs, err)
	}
	// Create the file ourselves so that it, and the -wal and -shm files SQLite
	// derives from it, are private: run logs are operational records.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open sqlite store %s: %w", abs, err)
	}
	f.Close()

	// The first connection switches a fresh file to WAL, which takes a lock
	// SQLite does not wait for (busy_timeout does not apply to it): processes
	// opening the same new store at once take turns on the directory.
	unlock, err := lockDir(filepath.Dir(abs))
	if err != nil {
		return nil, fmt.Errorf("open sqlite store %s: %w", abs, err)
	}
	defer unlock()
	if err := setPageSize(ctx, abs); err != nil {
		return nil, err
	}
	// Each SQLite connection has its own page cache (2 MiB by default), so
	// the pools are bounded; there is one writer at a time anyway.
	db, err := openSQLitePool(ctx, abs, "FULL", 16, true)
	if err != nil {
		return nil, err
	}
	// The append connection opens at FULL too: should database/sql ever
	// replace it, a fresh connection errs on the durable side. It connects
	// on the first append: most commands append nothing.
	appendDB, err := openSQLitePool(ctx, abs, "FULL", 1, false, appendCacheSize)
	if err != nil {
		db.Close()
		return nil, err
	}
	return &Store{db: db, appendDB: appendDB, appendSync: "FULL", dialect: DialectSQLite, path: abs}, nil
}

// sqlitePageSize is the page size of a new store. Output is most of what
// a store holds, and SQLite writes it a page at a time: twice (to the
// write-ahead log, then to the database at a checkpoint) with two system
// calls per page into the log and two more at the checkpoint. 16 KiB pages
// make a quarter of those calls for each byte of output than the 4 KiB
// default, while a step's own commit (a few small rows) still fits in a
// handful of pages (bench/run/README.md has the figures of both).
const sqlitePageSize = 16384

// setPageSize gives a new, empty store file sqlitePageSize pages. SQLite
// fixes the page size when the first table is written, and once the file
// is in WAL mode it cannot change; the DSN's pragmas run in alphabetical
// order (journal_mode before page_size), so this runs first, on a
// connection of its own. A store that exists keeps the size it has.
func setPageSize(ctx context.Context, path string) error {
	if fi, err := os.Stat(path); err != nil {
		return fmt.Errorf("open sqlite store %s: %w", path, err)
	} else if fi.Size() > 0 {
		return nil
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		return fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	defer db.Close()
	for _, q := range []string{fmt.Sprintf("PRAGMA page_size = %d", sqlitePageSize), "PRAGMA journal_mode = WAL"} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("create sqlite store %s: %w", path, err)
		}
	}
	return nil
}

// appendCacheSize bounds the append connection's page cache (SQLite's
// default is 2 MiB per connection). Appends touch the last pages of the
// events table and its index, a run's row and its lease; the rest of what
// the cache would keep are pages of output already written, which nothing
// on this connection reads again.
const appendCacheSize = "cache_size(-256)"

// openSQLitePool opens a pool, with pragmas after sqlitePragmas; with ping it connects at once (the first
// connection switches a fresh file to WAL), else on first use.
func openSQLitePool(ctx context.Context, path, synchronous string, conns int, ping bool, pragmas ...string) (*sql.DB, error) {
	q := "_txlock=immediate" // writers take the lock up front: no deadlock on read-then-write
	for _, p := range slices.Concat(sqlitePragmas, pragmas) {
		q += "&_pragma=" + p
	}
	q += "&_pragma=synchronous(" + synchronous + ")"
	db, err := sql.Open("sqlite", path+"?"+q)
	if err != nil {
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	if !ping {
		return db, nil
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	return db, nil
}

func (s *Store) migrate(ctx context.Context) error {
	dir, err := fs.Sub(migrationFiles, "migrations/"+s.dialect)
	if err != nil {
		return fmt.Errorf("migrate store: %w", err)
	}
	if s.dialect == DialectSQLite && s.sqliteUpToDate(ctx, dir) {
		return nil
	}
	var opts []goose.ProviderOption
	gooseDialect := goose.DialectSQLite3
	if s.dialect == DialectPostgres {
		gooseDialect = goose.DialectPostgres
		// An advisory lock serialises servers starting together on one database.
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
		if err != nil {
			return fmt.Errorf("migrate store: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	} else {
		// Two processes opening a fresh file at once would both try to apply
		// the first migration; a lock on the directory serialises them.
		unlock, err := lockDir(filepath.Dir(s.path))
		if err != nil {
			return fmt.Errorf("migrate store %s: %w", s.path, err)
		}
		defer unlock()
	}
	p, err := goose.NewProvider(gooseDialect, s.db, dir, opts...)
	if err != nil {
		return fmt.Errorf("migrate store: %w", err)
	}
	if s.dialect == DialectSQLite {
		return s.migrateSQLite(ctx, p, dir)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate store: %w", err)
	}
	return nil
}

// sqliteUpToDate reports whether goose's table records every embedded
// migration as applied (the last row of each version says so): the
// common case of an existing store, told by one query. Otherwise, and on
// any error (no table yet), goose's provider decides, under the
// directory lock.
func (s *Store) sqliteUpToDate(ctx context.Context, dir fs.FS) bool {
	names, err := fs.Glob(dir, "*.sql")
	if err != nil || len(names) == 0 {
		return false
	}
	applied := map[int64]bool{}
	rows, err := s.db.QueryContext(ctx, `SELECT version_id, is_applied FROM goose_db_version ORDER BY id`)
	if err != nil {
		return false
	}
	defer rows.Close()
	for rows.Next() {
		var v int64
		var ok bool
		if err := rows.Scan(&v, &ok); err != nil {
			return false
		}
		applied[v] = ok
	}
	if rows.Err() != nil {
		return false
	}
	for _, name := range names {
		prefix, _, _ := strings.Cut(name, "_")
		v, err := strconv.ParseInt(prefix, 10, 64)
		if err != nil || !applied[v] {
			return false
		}
	}
	return true
}

// migrateSQLite applies pending migrations through a connection of their
// own at synchronous=NORMAL: a fresh store takes a dozen transactions, and
// an fsync each made creating it the slowest part of a first run. It is as
// safe: a killed process loses no commit in WAL mode, a power loss at most
// the last migrations, which the next Open applies again, and the first
// fsynced commit after them (a run's first event) makes them durable too,
// since it syncs the whole WAL.
func (s *Store) migrateSQLite(ctx context.Context, p *goose.Provider, dir fs.FS) error {
	pending, err := p.HasPending(ctx)
	if err != nil {
		return fmt.Errorf("migrate store: %w", err)
	}
	if !pending {
		return nil
	}
	db, err := openSQLitePool(ctx, s.path, "NORMAL", 1, false)
	if err != nil {
		return err
	}
	defer db.Close()
	p, err = goose.NewProvider(goose.DialectSQLite3, db, dir)
	if err != nil {
		return fmt.Errorf("migrate store: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate store: %w", err)
	}
	return nil
}

// lockDir takes an exclusive flock on a directory. It does not touch the
// database file itself: closing another descriptor of that file would drop
// the POSIX locks SQLite holds on it.
func lockDir(dir string) (unlock func(), err error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// Close closes the database.
func (s *Store) Close() error {
	s.stmtMu.Lock()
	for _, st := range s.stmts {
		st.bump.Close()
		st.insert.Close()
	}
	s.stmts = nil
	s.stmtMu.Unlock()
	if s.appendDB != nil {
		// appendDirect's statements are finalized before their
		// connection closes: SQLite keeps a connection with live
		// statements open (and the database's WAL with it).
		s.appendMu.Lock()
		if s.direct.conn != nil {
			if conn, err := s.appendDB.Conn(context.Background()); err == nil {
				conn.Raw(func(dc any) error {
					if dc == s.direct.conn {
						s.direct.bump.Close()
						s.direct.insert.Close()
					}
					return nil
				})
				conn.Close()
			}
			s.direct = directStmts{}
		}
		ckpt := s.ckpt
		s.ckpt = nil
		s.appendMu.Unlock()
		if ckpt != nil {
			ckpt.stop()
		}
		s.appendDB.Close()
	}
	return s.db.Close()
}

// Dialect is DialectSQLite or DialectPostgres.
func (s *Store) Dialect() string { return s.dialect }

// Path is the SQLite database file (its -wal and -shm files sit beside it),
// or "" on PostgreSQL.
func (s *Store) Path() string { return s.path }

// execAt runs one write outside AppendEvents. On SQLite it goes through
// the append connection at the given synchronous level, like an append
// (see sqlitePragmas): a second connection writing at FULL would fsync
// the WAL, and the directory on its first sync, on its own. Run leases
// are written at NORMAL: a lease only has to survive the death of its
// process, which a commit without fsync does; a power loss kills its
// owner too, and the lease is then one of a dead process either way. On
// PostgreSQL (and a read-only store) it uses the pool.
func (s *Store) execAt(ctx context.Context, level, query string, args ...any) (sql.Result, error) {
	if s.appendDB == nil {
		return s.db.ExecContext(ctx, query, args...)
	}
	s.appendMu.Lock()
	defer s.appendMu.Unlock()
	if err := s.setAppendSync(ctx, level); err != nil {
		return nil, err
	}
	return s.appendDB.ExecContext(ctx, query, args...)
}

// redactDSN hides the password of a database URL in messages.
func redactDSN(dsn string) string {
	at := strings.LastIndex(dsn, "@")
	scheme := strings.Index(dsn, "://")
	if at < 0 || scheme < 0 || at < scheme {
		return dsn
	}
	userinfo := dsn[scheme+3 : at]
	if i := strings.Index(userinfo, ":"); i >= 0 {
		return dsn[:scheme+3] + userinfo[:i] + ":***" + dsn[at:]
	}
	return dsn
}
