-- +goose Up
-- Fraud rules in the database (docs/FRAUD.md "Rules in the database"):
-- the current set, one row per rule, and its history, one row per rule
-- added, changed or removed, with who and when. Every node polls
-- fraud_rules_head.version (one row) and reloads the set when it moved.
-- A rule's text never holds a card number (fraud.Compile refuses one).
CREATE TABLE fraud_rules (
    name       TEXT PRIMARY KEY,
    rule_when  TEXT NOT NULL,
    score      INTEGER NOT NULL,
    comment    TEXT NOT NULL DEFAULT '',
    disabled   BOOLEAN NOT NULL DEFAULT FALSE,
    version    BIGINT NOT NULL,
    changed_at BIGINT NOT NULL,
    changed_by TEXT NOT NULL
);

-- action is added, changed or removed; the rule's fields are as it
-- became (removed: as it was). version is the set's version the change
-- made.
CREATE TABLE fraud_rule_history (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    version   BIGINT NOT NULL,
    at        BIGINT NOT NULL,
    actor     TEXT NOT NULL,
    source    TEXT NOT NULL DEFAULT '',
    action    TEXT NOT NULL,
    name      TEXT NOT NULL,
    rule_when TEXT NOT NULL DEFAULT '',
    score     INTEGER NOT NULL DEFAULT 0,
    comment   TEXT NOT NULL DEFAULT '',
    disabled  BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX fraud_rule_history_version ON fraud_rule_history (version);

-- One row: the set's version, moved by every change. A change locks it
-- first (UPDATE: a row lock on PostgreSQL, the write lock on SQLite), so
-- two loads at once apply one after the other.
CREATE TABLE fraud_rules_head (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO fraud_rules_head (id, version) VALUES (1, 0);

-- +goose Down
DROP TABLE fraud_rules_head;
DROP TABLE fraud_rule_history;
DROP TABLE fraud_rules;
