-- Schema version 3: who the sync leader is (`store/pg/leader.rs`). Leadership itself is a
-- session-level advisory lock, which PostgreSQL frees when the leader's connection ends; this
-- one row only says who took it, for `perch service status`. A row whose backend no longer holds
-- the lock is stale and never reported (the reading joins pg_locks).
CREATE TABLE service_leader (
    id smallint PRIMARY KEY CHECK (id = 1),
    host text NOT NULL,
    pid integer NOT NULL,
    -- pg_backend_pid() of the leader's election connection: the session holding the lock.
    backend_pid integer NOT NULL,
    since timestamptz NOT NULL
);
