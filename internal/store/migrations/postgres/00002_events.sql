-- +goose Up
-- A run's append-only log. text holds raw bytes (command output need not be
-- UTF-8 and may contain NUL, which PostgreSQL TEXT rejects); data is a JSON
-- object as text, or ''.
CREATE TABLE events (
    run_id  TEXT COLLATE "C" NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq     BIGINT NOT NULL CHECK (seq > 0),
    at      BIGINT NOT NULL,
    type    TEXT NOT NULL CHECK (type <> ''),
    step    TEXT NOT NULL DEFAULT '',
    host    TEXT NOT NULL DEFAULT '',
    actor   TEXT NOT NULL DEFAULT '',
    attempt INTEGER NOT NULL DEFAULT 0,
    stream  TEXT NOT NULL DEFAULT '',
    text    BYTEA NOT NULL DEFAULT '',
    data    TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (run_id, seq)
);

-- +goose Down
DROP TABLE events;
