-- +goose Up
-- The caller's P-Asserted-Identity (RFC 3325 §9.1) as the peer sent it:
-- the user part (number) of its first URI and its display name.
-- caller_name (00001) now holds From's display name.
ALTER TABLE interactions ADD COLUMN asserted_id TEXT NOT NULL DEFAULT '';
ALTER TABLE interactions ADD COLUMN asserted_name TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE interactions DROP COLUMN asserted_name;
ALTER TABLE interactions DROP COLUMN asserted_id;
