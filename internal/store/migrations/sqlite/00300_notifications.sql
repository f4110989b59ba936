-- +goose Up
-- Notifications leave through an outbox. A notice is something people are
-- told about: a notable run event (written in the same transaction as the
-- event, so it is never lost or invented) or a task's lifecycle news. dedupe
-- makes each notice exist once, whichever node or process noticed it.
CREATE TABLE notices (
    id         INTEGER PRIMARY KEY,
    dedupe     TEXT NOT NULL UNIQUE,
    kind       TEXT NOT NULL,               -- event type, or task.* for lifecycle news
    run_id     TEXT NOT NULL DEFAULT '',
    seq        INTEGER NOT NULL DEFAULT 0,  -- the event's seq in run_id
    task       TEXT NOT NULL DEFAULT '',
    detail     TEXT NOT NULL DEFAULT '',    -- JSON object for task notices; '' otherwise
    created_at INTEGER NOT NULL,
    routed     INTEGER NOT NULL DEFAULT 0   -- 1 once its deliveries exist
);
CREATE INDEX notices_unrouted ON notices (routed, id);

-- One delivery per notice per channel (the UNIQUE constraint), claimed by
-- one node at a time with a lease, retried with backoff until sent or given up.
CREATE TABLE deliveries (
    id            INTEGER PRIMARY KEY,
    notice_id     INTEGER NOT NULL REFERENCES notices (id) ON DELETE CASCADE,
    channel       TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    attempts      INTEGER NOT NULL DEFAULT 0,
    next_at       INTEGER NOT NULL,
    claimed_by    TEXT NOT NULL DEFAULT '',
    claimed_until INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT NOT NULL DEFAULT '',
    sent_at       INTEGER,
    UNIQUE (notice_id, channel)
);
CREATE INDEX deliveries_due ON deliveries (status, next_at);

-- +goose Down
DROP TABLE deliveries;
DROP TABLE notices;
