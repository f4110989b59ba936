-- +goose Up
-- Server identity: users (people and service identities), teams, grants,
-- sessions and API keys. Tokens are stored as SHA-256 hashes only.
CREATE TABLE users (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    display    TEXT NOT NULL DEFAULT '',
    password   TEXT NOT NULL DEFAULT '', -- argon2id PHC string; '' = cannot sign in with a password
    service    INTEGER NOT NULL DEFAULT 0,
    disabled   INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);

CREATE TABLE teams (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);

CREATE TABLE team_members (
    team_id INTEGER NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (team_id, user_id)
);
CREATE INDEX team_members_by_user ON team_members (user_id);

CREATE TABLE grants (
    id           INTEGER PRIMARY KEY,
    team_id      INTEGER NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    permission   TEXT NOT NULL,
    projects     TEXT NOT NULL DEFAULT '', -- JSON array; '' = every project
    environments TEXT NOT NULL DEFAULT ''  -- JSON array; '' = every environment
);
CREATE INDEX grants_by_team ON grants (team_id);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf       TEXT NOT NULL,
    remote     TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_id);

CREATE TABLE api_keys (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    key_hash     TEXT NOT NULL UNIQUE,
    hint         TEXT NOT NULL, -- the first characters, to recognise a key in lists
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    expires_at   INTEGER
);
CREATE INDEX api_keys_by_user ON api_keys (user_id);

-- +goose Down
DROP TABLE api_keys;
DROP TABLE sessions;
DROP TABLE grants;
DROP TABLE team_members;
DROP TABLE teams;
DROP TABLE users;
