-- Schema version 5: what the sync leader writes besides the mentions (`store/pg/costs.rs`), so
-- that the leader of a team's services can poll and stream into PostgreSQL: the cost meter, which
-- mentions arrived by the Activity stream, and the posts X sent that could not be read.

-- What each account spent per UTC day and per kind (sled's `$ | account | day | kind`).
CREATE TABLE cost_uses (
    account_id uuid NOT NULL,
    day date NOT NULL,
    -- CostKind::code().
    kind smallint NOT NULL,
    count bigint NOT NULL CHECK (count >= 0),
    micros bigint NOT NULL CHECK (micros >= 0),
    PRIMARY KEY (account_id, day, kind)
);
-- The budget reads a month over every account.
CREATE INDEX cost_uses_by_day ON cost_uses (day);

-- The resources already charged on a UTC day (COSTS.md: a resource returned twice in one UTC day
-- is billed once). Only today's rows de-duplicate anything; older days are deleted by later
-- charges, a bounded chunk at a time.
CREATE TABLE cost_seen (
    day date NOT NULL,
    -- ResourceClass::code().
    class smallint NOT NULL,
    x_id bigint NOT NULL,
    account_id uuid NOT NULL,
    PRIMARY KEY (day, class, x_id)
);

-- Small documents the meter keeps: the last `GET /2/usage/tweets` answer, the budget warnings
-- already given this month.
CREATE TABLE meter_notes (
    name text PRIMARY KEY,
    value text NOT NULL
);

-- A mention the Activity stream delivered first (`Arrival::Stream`); polled ones are false.
ALTER TABLE mentions ADD COLUMN streamed boolean NOT NULL DEFAULT false;

-- Posts X sent that could not be read, once per account (`perch doctor` counts them).
CREATE TABLE unreadable_posts (
    account_id uuid NOT NULL,
    tweet_id bigint NOT NULL,
    PRIMARY KEY (account_id, tweet_id)
);
