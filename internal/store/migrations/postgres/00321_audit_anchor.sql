-- +goose Up
-- The audit head's anchor: an HMAC of (seq, hash) under a key derived from
-- the master key, which the database does not hold, so whoever can write
-- the database cannot rebuild the chain with a valid head. '' until the
-- server first writes (or anchors) the log with its key.
ALTER TABLE audit_head ADD COLUMN mac TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE audit_head DROP COLUMN mac;
