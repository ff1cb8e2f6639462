-- +goose Up
-- Velocity events for fraud screening (docs/FRAUD.md, "Velocity"): one row
-- per screened payment with its gateway result. The caller's number and
-- the customer id are kept only as HMAC tokens under the archive key (as
-- participant-data tokens, with their own labels), the card only as the
-- card token the secure segment computed: no column holds a number, a
-- customer id or a card. Rows older than retention.interactions are
-- purged; anonymise deletes a person's rows.
CREATE TABLE fraud_velocity (
    at             BIGINT NOT NULL,
    caller_token   TEXT NOT NULL DEFAULT '',
    customer_token TEXT NOT NULL DEFAULT '',
    card_token     TEXT NOT NULL DEFAULT '',
    declined       BOOLEAN NOT NULL DEFAULT FALSE,
    interaction_id TEXT NOT NULL DEFAULT ''
);
-- Each velocity count is one range scan of one of these, covering: the
-- count reads the index alone, never the table.
CREATE INDEX fraud_velocity_caller ON fraud_velocity (caller_token, at, card_token, declined);
CREATE INDEX fraud_velocity_customer ON fraud_velocity (customer_token, at, card_token, declined);
CREATE INDEX fraud_velocity_card ON fraud_velocity (card_token, at, declined);
CREATE INDEX fraud_velocity_at ON fraud_velocity (at);

-- +goose Down
DROP TABLE fraud_velocity;
