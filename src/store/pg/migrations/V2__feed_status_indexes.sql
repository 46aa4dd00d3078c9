-- Schema version 2: the feed's pages by status and by account and status, newest first.
-- (By account alone is the primary key, read backwards.)
CREATE INDEX mentions_by_status ON mentions (status, tweet_id DESC, account_id DESC);
CREATE INDEX mentions_by_account_status ON mentions (account_id, status, tweet_id DESC);
