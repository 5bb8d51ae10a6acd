-- Jobs written in the same transaction as the change that causes them, and
-- relayed to the Redis queue afterwards: a job exists if and only if its
-- change committed, even if the process dies right after the commit.
CREATE TABLE job_outbox (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at TEXT NOT NULL
);
