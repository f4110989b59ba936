-- +goose Up
-- The audit log is append-only and hash-chained (see internal/audit).
-- audit_head records the newest entry separately, so deleting the newest
-- rows is detected too.
CREATE TABLE audit_log (
    seq    INTEGER PRIMARY KEY,
    at     INTEGER NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL DEFAULT '',
    remote TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT '', -- JSON object; '' when empty
    prev   TEXT NOT NULL,
    hash   TEXT NOT NULL
);
CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL,
    hash TEXT NOT NULL
);

-- Variables are scoped by environment ('' = every environment). Sensitive
-- values are stored sealed (internal/secret), never in plaintext.
CREATE TABLE variables (
    environment TEXT NOT NULL DEFAULT '',
    name        TEXT NOT NULL,
    value       TEXT NOT NULL,
    sensitive   INTEGER NOT NULL DEFAULT 0,
    updated_by  TEXT NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (environment, name)
);

-- A snapshot is the content a run uses, by content hash; one per runbook
-- is published.
CREATE TABLE snapshots (
    hash            TEXT PRIMARY KEY,
    runbook         TEXT NOT NULL,
    source          BLOB NOT NULL,
    rollback_path   TEXT NOT NULL DEFAULT '',
    rollback_source BLOB NOT NULL DEFAULT X'',
    created_by      TEXT NOT NULL,
    created_at      INTEGER NOT NULL
);
CREATE INDEX snapshots_by_runbook ON snapshots (runbook, created_at DESC);
CREATE TABLE published_snapshots (
    runbook      TEXT PRIMARY KEY,
    hash         TEXT NOT NULL REFERENCES snapshots (hash),
    published_by TEXT NOT NULL,
    published_at INTEGER NOT NULL
);

-- Secret parameter values of a run, sealed, so an interrupted run can be
-- resumed without asking for them again. Deleted with the run.
CREATE TABLE run_secrets (
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    name   TEXT NOT NULL,
    sealed TEXT NOT NULL,
    PRIMARY KEY (run_id, name)
);

-- Triggers start runs of a runbook's published snapshot: on a cron
-- schedule or on a signed webhook, as a service identity.
CREATE TABLE triggers (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    kind          TEXT NOT NULL CHECK (kind IN ('schedule', 'webhook')),
    runbook       TEXT NOT NULL,
    environment   TEXT NOT NULL,
    params        TEXT NOT NULL DEFAULT '', -- JSON object
    schedule      TEXT NOT NULL DEFAULT '', -- cron expression
    timezone      TEXT NOT NULL DEFAULT '',
    catch_up      INTEGER NOT NULL DEFAULT 0,
    secret        TEXT NOT NULL DEFAULT '', -- webhook HMAC key, sealed
    service_user  INTEGER NOT NULL REFERENCES users (id),
    enabled       INTEGER NOT NULL DEFAULT 1,
    last_fired_at INTEGER,
    created_by    TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);

-- +goose Down
DROP TABLE triggers;
DROP TABLE run_secrets;
DROP TABLE published_snapshots;
DROP TABLE snapshots;
DROP TABLE variables;
DROP TABLE audit_head;
DROP TABLE audit_log;
