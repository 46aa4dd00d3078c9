-- Schema version 8: what a team's dashboards share (`store/pg/triage.rs`): the undo log of
-- triage actions, kept per person (each person undoes their own), and who each mention is
-- assigned to.
CREATE TABLE undo_actions (
    person text NOT NULL,
    -- Chosen by the client, increasing with time; newer actions are undone first.
    id bigint NOT NULL CHECK (id >= 0),
    -- store::UndoAction (codec).
    record bytea NOT NULL,
    PRIMARY KEY (person, id)
);
CREATE INDEX undo_actions_by_id ON undo_actions (id);

CREATE TABLE undo_chunks (
    person text NOT NULL,
    action bigint NOT NULL,
    chunk integer NOT NULL CHECK (chunk >= 0),
    -- The previous states of the chunk's mentions (codec).
    record bytea NOT NULL,
    PRIMARY KEY (person, action, chunk),
    FOREIGN KEY (person, action) REFERENCES undo_actions (person, id) ON DELETE CASCADE
);

CREATE TABLE assignments (
    account_id uuid NOT NULL,
    tweet_id bigint NOT NULL CHECK (tweet_id >= 0),
    person text NOT NULL,
    -- store::Assignment (codec).
    record bytea NOT NULL,
    PRIMARY KEY (account_id, tweet_id)
);
CREATE INDEX assignments_by_person ON assignments (person);

-- A send whose client went away while its request was out (`outbox_abandon_sending`): it stays
-- `sending` until X answers (so nobody can retry, cancel or mark it meanwhile), and an answer
-- that is a rate limit cancels it instead of keeping it waiting. A new claim clears it.
ALTER TABLE outbox ADD COLUMN abandoned boolean NOT NULL DEFAULT false;
