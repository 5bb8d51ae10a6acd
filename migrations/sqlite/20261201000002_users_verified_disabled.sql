-- Account state: whether the e-mail address has been verified (a changed
-- address is unverified again), and whether an admin has disabled the
-- account. Existing accounts start unverified and enabled.
ALTER TABLE users ADD COLUMN email_verified BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE users ADD COLUMN disabled BOOLEAN NOT NULL DEFAULT FALSE;
