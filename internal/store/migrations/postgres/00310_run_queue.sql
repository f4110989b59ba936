-- +goose Up
-- Server nodes sharing this database: each renews its row every third of
-- its ttl; a node whose row expired is dead and its queue claims are free.
CREATE TABLE nodes (
    id         TEXT COLLATE "C" PRIMARY KEY, -- the node's lease owner (store.ProcessOwner)
    addr       TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- Runs accepted and not yet executed to an end: whichever node has a free
-- worker claims one (FOR UPDATE SKIP LOCKED) and executes it under the
-- run's lease; the row goes when the execution ends.
CREATE TABLE run_queue (
    run_id            TEXT COLLATE "C" PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
    actor             TEXT NOT NULL,
    retry_interrupted TEXT NOT NULL DEFAULT '',
    enqueued_at       BIGINT NOT NULL,
    not_before        BIGINT NOT NULL,
    node              TEXT,
    claimed_at        BIGINT
);
CREATE INDEX run_queue_ready ON run_queue (not_before, enqueued_at) WHERE node IS NULL;

-- +goose Down
DROP TABLE run_queue;
DROP TABLE nodes;
