-- The fencing token of the last locked write: a write carrying an older
-- token (from a holder whose lease ran out) is refused.
ALTER TABLE users ADD COLUMN fence INTEGER NOT NULL DEFAULT 0;
