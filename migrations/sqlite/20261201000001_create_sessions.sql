-- Sessions: one row per login, kept so a Redis restarted empty costs users
-- an access token, never their session. Refresh tokens are stored only as
-- SHA-256 hashes: the current one, and the one it replaced (with when it
-- was spent) to tell a second browser tab from a thief. Times compared in
-- queries are Unix milliseconds, so both backends compare them as numbers.
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL,
    refresh_hash TEXT NOT NULL,
    previous_refresh_hash TEXT,
    previous_spent_at_ms INTEGER,
    created_at TEXT NOT NULL,
    last_used_at TEXT NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    ended_at_ms INTEGER,
    user_agent TEXT,
    ip TEXT
);

CREATE INDEX sessions_user_id ON sessions (user_id, created_at);
CREATE INDEX sessions_expires_at ON sessions (expires_at_ms);
