-- +goose Up
-- The runbooks a snapshot's call steps name, frozen with it (a JSON array
-- of {ref, path, source}), so a published snapshot and a resumed run call
-- the content they were made with.
ALTER TABLE snapshots ADD COLUMN called TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE snapshots DROP COLUMN called;
