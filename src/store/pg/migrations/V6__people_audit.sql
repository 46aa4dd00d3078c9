-- Schema version 6: the team's people and its audit log (`store/pg/team.rs`), shared by every
-- service on the database: a token made by `perch team add` on one machine opens every service,
-- and every service's actions land in one log.
CREATE TABLE people (
    name text PRIMARY KEY,
    -- Only the SHA-256 of the personal token, never the token (`service::token::hash`).
    token_hash text NOT NULL,
    record bytea NOT NULL
);

-- Append-only: perch never updates or deletes a row. seq is one past the newest (chosen under
-- a transaction lock), so the log has no gaps a reader could take for lost entries.
CREATE TABLE audit (
    seq bigint PRIMARY KEY CHECK (seq > 0),
    at timestamptz NOT NULL,
    person text NOT NULL,
    account_id uuid,
    tweet_id bigint,
    record bytea NOT NULL
);
CREATE INDEX audit_by_person ON audit (person, seq DESC);
CREATE INDEX audit_by_mention ON audit (tweet_id, seq DESC) WHERE tweet_id IS NOT NULL;
