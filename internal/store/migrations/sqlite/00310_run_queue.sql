-- +goose Up
-- Server nodes sharing this database (one, with SQLite): see the
-- PostgreSQL migration.
CREATE TABLE nodes (
    id         TEXT PRIMARY KEY,
    addr       TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);

-- Runs accepted and not yet executed to an end.
CREATE TABLE run_queue (
    run_id            TEXT PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
    actor             TEXT NOT NULL,
    retry_interrupted TEXT NOT NULL DEFAULT '',
    enqueued_at       INTEGER NOT NULL,
    not_before        INTEGER NOT NULL,
    node              TEXT,
    claimed_at        INTEGER
);
CREATE INDEX run_queue_ready ON run_queue (not_before, enqueued_at) WHERE node IS NULL;

-- +goose Down
DROP TABLE run_queue;
DROP TABLE nodes;
