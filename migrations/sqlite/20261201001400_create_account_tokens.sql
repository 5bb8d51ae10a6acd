-- One-time tokens mailed to people: e-mail verification ("verify") and
-- password reset ("reset"). Only the SHA-256 hash of a token is stored; the
-- token itself exists only in the mail. `email` is the address the token was
-- mailed to (a verification counts only while the account still has it).
-- Times are Unix milliseconds, so both backends compare them as numbers.
-- `requested_at_ms` orders requests: a token spends the older ones of its
-- user and purpose, and is never minted behind a newer one.
CREATE TABLE account_tokens (
    token_hash TEXT PRIMARY KEY,
    purpose TEXT NOT NULL,
    user_id INTEGER NOT NULL,
    email TEXT NOT NULL,
    requested_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    spent_at_ms INTEGER
);

CREATE INDEX account_tokens_user ON account_tokens (user_id, purpose, requested_at_ms);
CREATE INDEX account_tokens_expires_at ON account_tokens (expires_at_ms);
