-- +goose Up
-- The digest nonces of REGISTER (and authenticated INVITEs) shared by the
-- nodes (cluster.enabled, docs/SCALE.md), so a REGISTER challenged by one
-- node may be answered to another. Both engines carry the tables (one
-- schema); only PostgreSQL is shared.

-- The one key every node signs its nonces with (hex), made by the first
-- node that needs it.
CREATE TABLE cluster_nonce_key (
    id  INTEGER PRIMARY KEY,
    key TEXT NOT NULL
);

-- Nonces that authenticated someone, with the highest nonce-count
-- accepted (RFC 7616 §3.3): a count not above it is a replay on every
-- node. issued_at is the nonce's own issue time (Unix milliseconds);
-- rows past the nonce lifetime are deleted as new ones arrive.
CREATE TABLE cluster_nonces (
    nonce     TEXT PRIMARY KEY,
    issued_at BIGINT NOT NULL,
    nc        BIGINT NOT NULL
);
CREATE INDEX cluster_nonces_issued ON cluster_nonces (issued_at);

-- +goose Down
DROP TABLE cluster_nonces;
DROP TABLE cluster_nonce_key;
