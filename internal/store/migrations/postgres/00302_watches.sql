-- +goose Up
-- The watch after a successful run (front matter watch: 24h): its guards
-- keep being evaluated until the watch ends. One row per watching run,
-- claimed by one node at a time; guards is the JSON the engine wrote (the
-- guards, their last state), so a node needs no document to watch.
CREATE TABLE watches (
    run_id        TEXT COLLATE "C" PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
    until_at      BIGINT NOT NULL,
    next_at       BIGINT NOT NULL,
    prometheus    TEXT NOT NULL DEFAULT '',
    guards        TEXT NOT NULL,
    claimed_by    TEXT NOT NULL DEFAULT '',
    claimed_until BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX watches_due ON watches (next_at);

-- +goose Down
DROP TABLE watches;
