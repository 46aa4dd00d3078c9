-- perch on PostgreSQL, schema version 1: accounts, their sealed tokens and sync cursors, and the
-- mentions in the all-accounts feed order (newest first). Records are perch's own record format
-- (`store/codec.rs`, a format byte then the body), the same bytes sled holds; the columns beside
-- them are what the pages select and order by.
CREATE TABLE accounts (
    id uuid PRIMARY KEY,
    -- Accounts are unique by X user id, as in sled (`StoreError::DuplicateAccount`).
    twitter_id text NOT NULL UNIQUE,
    record bytea NOT NULL
);

-- Only ever sealed (`store/sealed.rs`): PostgreSQL perch refuses to start without a token_key.
CREATE TABLE account_tokens (
    account_id uuid PRIMARY KEY,
    sealed bytea NOT NULL
);

-- The newest tweet id committed per account (the next poll's since_id); it never moves back.
CREATE TABLE cursors (
    account_id uuid PRIMARY KEY,
    since_id bigint NOT NULL CHECK (since_id >= 0)
);

CREATE TABLE mentions (
    account_id uuid NOT NULL,
    -- X snowflake ids are below 2^63; a larger one is skipped with a warning, as a non-numeric
    -- one is in sled.
    tweet_id bigint NOT NULL CHECK (tweet_id >= 0),
    -- MentionStatus::code().
    status smallint NOT NULL,
    record bytea NOT NULL,
    PRIMARY KEY (account_id, tweet_id)
);

-- The all-accounts feed, newest first; (tweet_id, account_id) is the feed position (FeedPos).
CREATE INDEX mentions_newest ON mentions (tweet_id DESC, account_id DESC);
