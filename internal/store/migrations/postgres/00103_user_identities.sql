-- +goose Up
-- External identities (OIDC): a user signed in through an identity
-- provider is found again by the provider's stable subject, never by a
-- name the provider lets its users choose.
CREATE TABLE user_identities (
    issuer  TEXT NOT NULL,
    subject TEXT NOT NULL,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (issuer, subject)
);
CREATE INDEX user_identities_by_user ON user_identities (user_id);

-- +goose Down
DROP TABLE user_identities;
