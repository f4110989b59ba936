-- +goose Up
-- A webhook trigger speaks opsbook's signed JSON (format '') or
-- Prometheus Alertmanager's webhook payload ('alertmanager'): then alert_match
-- selects alerts by label (JSON object, exact values) and alert_params maps
-- parameters to labels.NAME / annotations.NAME (JSON object).
ALTER TABLE triggers ADD COLUMN format TEXT NOT NULL DEFAULT '';
ALTER TABLE triggers ADD COLUMN alert_match TEXT NOT NULL DEFAULT '';
ALTER TABLE triggers ADD COLUMN alert_params TEXT NOT NULL DEFAULT '';

-- The runs alerts started, by the alert's fingerprint. At most one active
-- row per trigger and fingerprint (the partial unique index): a repeated
-- notification of a firing alert does not start a second run while the first
-- is active, on any node.
CREATE TABLE alert_runs (
    trigger_name TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    run_id       TEXT NOT NULL DEFAULT '',
    active       INTEGER NOT NULL DEFAULT 1,
    fired_at     BIGINT NOT NULL,
    resolved_at  BIGINT,
    repeats      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (trigger_name, fingerprint, fired_at)
);
CREATE UNIQUE INDEX alert_runs_active ON alert_runs (trigger_name, fingerprint) WHERE active = 1;

-- +goose Down
DROP TABLE alert_runs;
ALTER TABLE triggers DROP COLUMN alert_params;
ALTER TABLE triggers DROP COLUMN alert_match;
ALTER TABLE triggers DROP COLUMN format;
