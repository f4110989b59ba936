-- +goose Up
-- Runs executed outside the server (`opsbook run --local` on someone's
-- machine) and reported to it: the server keeps their record (runs,
-- events) but never executes, resumes or takes them over. reporter is the
-- authenticated user who registered the run; only they append to it.
-- acked_seq is the reporter's own sequence number of the last event
-- appended, so a batch sent again is not appended twice.
CREATE TABLE reported_runs (
    run_id        TEXT PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
    reporter      TEXT NOT NULL,
    acked_seq     INTEGER NOT NULL DEFAULT 0,
    registered_at INTEGER NOT NULL
);

-- The CLI's outbox: local runs that report to a server. The events
-- themselves are the run's own log; sent_seq is how far the server has
-- acknowledged it, so what is left to send survives any crash.
CREATE TABLE run_reports (
    run_id     TEXT PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
    server     TEXT NOT NULL,
    registered INTEGER NOT NULL DEFAULT 0,
    sent_seq   INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);

-- +goose Down
DROP TABLE run_reports;
DROP TABLE reported_runs;
