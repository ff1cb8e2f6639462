-- +goose Up
-- Times are Unix milliseconds (UTC) in BIGINT columns, 0 where a time
-- never happened: the same schema, values and queries on SQLite and
-- PostgreSQL. Released migrations are never edited: add a new one.

-- General information of one interaction (one call through cloak).
CREATE TABLE interactions (
    id                TEXT PRIMARY KEY,
    sip_call_id       TEXT NOT NULL DEFAULT '',
    caller            TEXT NOT NULL DEFAULT '',
    caller_name       TEXT NOT NULL DEFAULT '',
    called            TEXT NOT NULL DEFAULT '',
    route             TEXT NOT NULL DEFAULT '',
    queue             TEXT NOT NULL DEFAULT '',
    agent             TEXT NOT NULL DEFAULT '',
    offered_at        BIGINT NOT NULL,
    answered_at       BIGINT NOT NULL DEFAULT 0,
    queued_at         BIGINT NOT NULL DEFAULT 0,
    agent_answered_at BIGINT NOT NULL DEFAULT 0,
    ended_at          BIGINT NOT NULL,
    wait_ms           BIGINT NOT NULL DEFAULT 0,
    talk_ms           BIGINT NOT NULL DEFAULT 0,
    ended_by          TEXT NOT NULL DEFAULT '',
    end_reason        TEXT NOT NULL DEFAULT '',
    consent           TEXT NOT NULL DEFAULT 'not_asked',
    node              TEXT NOT NULL DEFAULT ''
);
CREATE INDEX interactions_offered ON interactions (offered_at);
CREATE INDEX interactions_caller ON interactions (caller, offered_at);
CREATE INDEX interactions_called ON interactions (called, offered_at);
CREATE INDEX interactions_queue ON interactions (queue, offered_at);
CREATE INDEX interactions_agent ON interactions (agent, offered_at);
CREATE INDEX interactions_route ON interactions (route, offered_at);

-- Participant data: the stored value is the clear value (policy keep) or
-- a mask (mask_after_call) beside token, the hex HMAC-SHA256 of the key
-- and the clear value under the archive key; drop_after_call stores no row.
CREATE TABLE participant_data (
    interaction_id TEXT NOT NULL REFERENCES interactions (id) ON DELETE CASCADE,
    key            TEXT NOT NULL,
    value          TEXT NOT NULL,
    token          TEXT NOT NULL DEFAULT '',
    policy         TEXT NOT NULL,
    PRIMARY KEY (interaction_id, key)
);
CREATE INDEX participant_data_token ON participant_data (token);
CREATE INDEX participant_data_value ON participant_data (key, value);

-- Secure segments: times, kind and outcome, never a digit. outputs is a
-- JSON object of the flow's non-secret outputs (card_last4, result).
CREATE TABLE secure_segments (
    interaction_id TEXT NOT NULL REFERENCES interactions (id) ON DELETE CASCADE,
    seq            INTEGER NOT NULL,
    flow           TEXT NOT NULL,
    kind           TEXT NOT NULL,
    started_at     BIGINT NOT NULL,
    ended_at       BIGINT NOT NULL DEFAULT 0,
    outputs        TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (interaction_id, seq)
);

-- Flow trace: each step and branch taken, as the gate let it through.
CREATE TABLE trace_steps (
    interaction_id TEXT NOT NULL REFERENCES interactions (id) ON DELETE CASCADE,
    seq            INTEGER NOT NULL,
    at             BIGINT NOT NULL,
    flow           TEXT NOT NULL,
    step           TEXT NOT NULL,
    action         TEXT NOT NULL,
    branch         TEXT NOT NULL DEFAULT '',
    detail         TEXT NOT NULL DEFAULT '',
    secure         BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (interaction_id, seq)
);

-- Recordings index: one recording per interaction. markers is the
-- sidecar's pause markers as JSON; status "" (complete), truncated or
-- recovered.
CREATE TABLE recordings (
    interaction_id TEXT PRIMARY KEY REFERENCES interactions (id) ON DELETE CASCADE,
    file           TEXT NOT NULL,
    sidecar        TEXT NOT NULL DEFAULT '',
    sha256         TEXT NOT NULL DEFAULT '',
    duration_ms    BIGINT NOT NULL DEFAULT 0,
    markers        TEXT NOT NULL DEFAULT '[]',
    status         TEXT NOT NULL DEFAULT '',
    deleted_at     BIGINT NOT NULL DEFAULT 0,
    deleted_by     TEXT NOT NULL DEFAULT ''
);

-- Audit log: who did what to which interaction, from where. mac is the
-- hex HMAC-SHA256 of the row (id included) under the archive key, so an
-- edited row fails `cloak archive audit -verify`.
CREATE TABLE audit_log (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    at             BIGINT NOT NULL,
    actor          TEXT NOT NULL,
    action         TEXT NOT NULL,
    interaction_id TEXT NOT NULL DEFAULT '',
    address        TEXT NOT NULL DEFAULT '',
    detail         TEXT NOT NULL DEFAULT '',
    mac            TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_interaction ON audit_log (interaction_id, id);

-- +goose Down
DROP TABLE audit_log;
DROP TABLE recordings;
DROP TABLE trace_steps;
DROP TABLE secure_segments;
DROP TABLE participant_data;
DROP TABLE interactions;
