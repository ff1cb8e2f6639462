-- +goose Up
-- The audit log becomes a hash chain (issue 21): each new row has a
-- sequence number and a chain value, the HMAC under the archive key of
-- (seq, the previous row's chain value, the row's own mac), so a row
-- deleted, inserted or moved breaks the chain at the next row. Rows
-- written before this migration keep seq NULL and verify by their own mac
-- alone, as before; the chain starts after them.
-- redacted is set (an HMAC of seq and mac) when the purge blanks a chained
-- row of a purged interaction: the row stays as a content-free link.
ALTER TABLE audit_log ADD COLUMN seq BIGINT;
ALTER TABLE audit_log ADD COLUMN chain TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_log ADD COLUMN redacted TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX audit_log_seq ON audit_log (seq);

-- One row: the chain's head (last seq appended, its chain value, an HMAC
-- of both) and its start (first seq kept, the chain value before it, an
-- HMAC of both: the signed checkpoint left when the purge drops the
-- leading redacted rows). Appenders lock this row (UPDATE) so the chain
-- grows one row at a time across processes and nodes. Empty macs: no
-- chained row written yet.
CREATE TABLE audit_chain (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    head_seq   BIGINT NOT NULL,
    head_chain TEXT NOT NULL,
    head_mac   TEXT NOT NULL,
    first_seq  BIGINT NOT NULL,
    first_prev TEXT NOT NULL,
    first_mac  TEXT NOT NULL
);
INSERT INTO audit_chain (id, head_seq, head_chain, head_mac, first_seq, first_prev, first_mac)
    VALUES (1, 0, '', '', 1, '', '');

-- +goose Down
DROP TABLE audit_chain;
DROP INDEX audit_log_seq;
ALTER TABLE audit_log DROP COLUMN redacted;
ALTER TABLE audit_log DROP COLUMN chain;
ALTER TABLE audit_log DROP COLUMN seq;
