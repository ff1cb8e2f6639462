-- +goose Up
-- Users, API tokens and browser sessions of the HTTP API (issue 22,
-- docs/SECURITY.md "Users and roles"). Times are Unix milliseconds as in
-- 00001. No column holds a secret in clear: password_hash is an argon2id
-- PHC string, api_tokens.hash and sessions.id_hash are hex SHA-256 of
-- the random token or cookie value the client holds.
CREATE TABLE users (
    name             TEXT PRIMARY KEY,
    role             TEXT NOT NULL,
    agent            TEXT NOT NULL DEFAULT '',
    password_hash    TEXT NOT NULL,
    disabled         INTEGER NOT NULL DEFAULT 0,
    created_at       BIGINT NOT NULL,
    password_changed BIGINT NOT NULL DEFAULT 0
);

-- id is the public handle (tokens list/revoke); expires_at 0 never.
CREATE TABLE api_tokens (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    role       TEXT NOT NULL,
    hash       TEXT NOT NULL UNIQUE,
    created_by TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL DEFAULT 0,
    revoked_at BIGINT NOT NULL DEFAULT 0
);

-- Browser sessions: in the database so they survive a restart, work on
-- every node sharing it, and end at once when the CLI disables a user or
-- changes a password (their rows go).
CREATE TABLE sessions (
    id_hash    TEXT PRIMARY KEY,
    user_name  TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    csrf       TEXT NOT NULL,
    address    TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_name);

-- +goose Down
DROP TABLE sessions;
DROP TABLE api_tokens;
DROP TABLE users;
