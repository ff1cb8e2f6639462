-- +goose Up
-- Search orders by (offered_at DESC, id DESC): this index gives that order
-- whole, so a time-range search stops after its page instead of sorting
-- every row of the range. Measured at 1,000,000 interactions
-- (docs/PERFORMANCE.md): a week's newest 100 went from ~210 ms (SQLite's
-- planner skip-scanned interactions_agent and sorted ~38,000 rows) to
-- ~2 ms. It makes interactions_offered (its prefix) redundant.
CREATE INDEX interactions_offered_id ON interactions (offered_at, id);
DROP INDEX interactions_offered;

-- +goose Down
CREATE INDEX interactions_offered ON interactions (offered_at);
DROP INDEX interactions_offered_id;
