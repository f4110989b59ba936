-- +goose Up
-- Times are unix microseconds (BIGINT) in both dialects: one scanning path,
-- exact ordering, no time-zone surprises. NULL means "not yet".
CREATE TABLE runs (
    id          TEXT COLLATE "C" PRIMARY KEY, -- bytewise: ids sort by time, prefixes use the index
    workspace   TEXT NOT NULL DEFAULT '',
    runbook     TEXT NOT NULL,
    task        TEXT NOT NULL DEFAULT '',
    title       TEXT NOT NULL DEFAULT '',
    environment TEXT NOT NULL DEFAULT '',
    snapshot    TEXT NOT NULL DEFAULT '',
    params      TEXT NOT NULL DEFAULT '', -- JSON object; '' when there are none
    status      TEXT NOT NULL,
    created_by  TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL,
    started_at  BIGINT,
    finished_at BIGINT,
    emergency   TEXT NOT NULL DEFAULT '',
    last_seq    BIGINT NOT NULL DEFAULT 0 -- seq of the run's last event; appenders bump it under the row lock
);

-- The run list is newest first, optionally filtered; each filter has an
-- index that ends in the list's order so a page is an index range scan.
CREATE INDEX runs_by_created ON runs (created_at DESC, id DESC);
CREATE INDEX runs_by_runbook ON runs (runbook, environment, created_at DESC, id DESC);
CREATE INDEX runs_by_environment ON runs (environment, created_at DESC, id DESC);
CREATE INDEX runs_by_status ON runs (status, created_at DESC, id DESC);
CREATE INDEX runs_by_task ON runs (task, created_at DESC, id DESC);

-- +goose Down
DROP TABLE runs;
