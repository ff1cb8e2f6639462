-- +goose Up
-- Fraud screening (docs/FRAUD.md). Times are Unix milliseconds as in
-- 00001. No column holds a card number: static values are refused when
-- they look like one (fraud.Entry.Normalise), holds keep the decision's
-- matches (entry and rule names, types, scores) and the gateway's
-- reference, never a card.

-- Static fraud data: one row per (type, normalised value); score NULL
-- means the type's default score (fraud.default_scores).
CREATE TABLE fraud_entries (
    type     TEXT NOT NULL,
    value    TEXT NOT NULL,
    score    INTEGER,
    comment  TEXT NOT NULL DEFAULT '',
    added_by TEXT NOT NULL DEFAULT '',
    added_at BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (type, value)
);
-- Nodes poll COUNT(*) and MAX(added_at) to see a change (FraudVersion).
CREATE INDEX fraud_entries_added ON fraud_entries (added_at);

-- Holds: a payment (fraud-auto) or an interaction (fraud-manual) held
-- for review. status open, released (captured) or rejected (voided).
-- interaction_id is not a foreign key: the hold is made during the call,
-- the interaction row when it ends. matches is the decision's JSON.
CREATE TABLE fraud_holds (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    interaction_id    TEXT NOT NULL DEFAULT '',
    code              TEXT NOT NULL,
    status            TEXT NOT NULL DEFAULT 'open',
    score             INTEGER NOT NULL DEFAULT 0,
    minimum           INTEGER NOT NULL DEFAULT 0,
    matches           TEXT NOT NULL DEFAULT '[]',
    gateway_reference TEXT NOT NULL DEFAULT '',
    created_by        TEXT NOT NULL DEFAULT '',
    created_at        BIGINT NOT NULL,
    decided_by        TEXT NOT NULL DEFAULT '',
    decided_at        BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX fraud_holds_status ON fraud_holds (status, created_at);
CREATE INDEX fraud_holds_interaction ON fraud_holds (interaction_id);

-- The notes thread of a hold: comments, and the comment of each decision.
CREATE TABLE fraud_hold_notes (
    hold_id BIGINT NOT NULL REFERENCES fraud_holds (id) ON DELETE CASCADE,
    seq     INTEGER NOT NULL,
    at      BIGINT NOT NULL,
    author  TEXT NOT NULL,
    kind    TEXT NOT NULL,
    text    TEXT NOT NULL,
    PRIMARY KEY (hold_id, seq)
);

-- +goose Down
DROP TABLE fraud_hold_notes;
DROP TABLE fraud_holds;
DROP TABLE fraud_entries;
