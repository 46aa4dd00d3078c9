-- Schema version 4: the outbox and drafts (`store/pg/outbox.rs`), so that the services of a team
-- share one record of every reply and DM, and exactly one worker sends each.
CREATE TABLE outbox (
    seq bigint PRIMARY KEY CHECK (seq > 0),
    account_id uuid NOT NULL,
    tweet_id bigint NOT NULL CHECK (tweet_id >= 0),
    -- OutboxState::as_str().
    state text NOT NULL CHECK (state IN
        ('queued', 'waiting', 'sending', 'sent', 'failed', 'unconfirmed', 'cancelled')),
    -- The mention's current entry (sled's `O | account | tweet` pointer): its newest one that is
    -- not finished. A failed one stops being current when a new send replaces it.
    is_current boolean NOT NULL,
    -- `waiting`: not sent again before this.
    not_before timestamptz,
    -- Who asked for it (a team person's name), for "@ana replied at 10:02".
    person text,
    -- `sending`: pg_backend_pid() of the connection that claimed it. While that session lives
    -- its worker may still hear X's answer; once it is gone, the entry is unconfirmed.
    claimed_by integer,
    record bytea NOT NULL
);
CREATE SEQUENCE outbox_seq OWNED BY outbox.seq;

-- At most one current entry per mention: two services enqueueing a reply to one mention at the
-- same moment cannot both succeed (the second insert fails on this index and is told who).
CREATE UNIQUE INDEX outbox_one_current ON outbox (account_id, tweet_id) WHERE is_current;
-- What the leader's worker claims next, oldest first.
CREATE INDEX outbox_ready ON outbox (seq) WHERE state IN ('queued', 'waiting');

CREATE TABLE drafts (
    account_id uuid NOT NULL,
    tweet_id bigint NOT NULL CHECK (tweet_id >= 0),
    record bytea NOT NULL,
    PRIMARY KEY (account_id, tweet_id)
);
