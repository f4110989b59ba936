-- +goose Up
-- Who is executing a run. token identifies one acquisition, so a holder
-- that lost its lease cannot renew or release its successor's.
CREATE TABLE run_leases (
    run_id      TEXT PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
    owner       TEXT NOT NULL,
    token       TEXT NOT NULL,
    acquired_at INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);

-- +goose Down
DROP TABLE run_leases;
