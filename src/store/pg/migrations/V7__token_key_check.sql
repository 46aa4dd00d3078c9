-- Schema version 7: a value sealed with the team's token_key when the database is first used, so
-- that a service or command started with another key is refused at once (its tokens would be
-- unreadable to every other service, and a login it stored would replace good tokens with ones
-- nobody else can open). Only the sealed check is here, never the key.
CREATE TABLE token_key_check (
    id smallint PRIMARY KEY CHECK (id = 1),
    sealed bytea NOT NULL
);
