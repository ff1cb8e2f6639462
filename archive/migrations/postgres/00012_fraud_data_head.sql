-- +goose Up
-- The static fraud data's version (docs/FRAUD.md "Static data"): one row,
-- moved by every add, import and remove in the change's own transaction,
-- so a node's 5 s poll reads one row instead of counting 1,000,000
-- entries. A row edited by hand in fraud_entries does not move it.
CREATE TABLE fraud_data_head (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO fraud_data_head (id, version) VALUES (1, 0);

-- +goose Down
DROP TABLE fraud_data_head;
