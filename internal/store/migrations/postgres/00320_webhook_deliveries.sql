-- +goose Up
-- Signatures of accepted webhook deliveries, kept until their signed
-- timestamp leaves the replay window: a captured request is refused
-- again after a restart and on every node sharing the database. mac is
-- the HMAC in canonical (lower-case hex) form.
CREATE TABLE webhook_deliveries (
    trigger_name TEXT NOT NULL,
    mac          TEXT NOT NULL,
    expires_at   BIGINT NOT NULL,
    PRIMARY KEY (trigger_name, mac)
);
CREATE INDEX webhook_deliveries_by_expiry ON webhook_deliveries (expires_at);

-- +goose Down
DROP TABLE webhook_deliveries;
