-- Admin search: a case-insensitive substring of the username or e-mail
-- (`lower(username) LIKE '%q%'`, `email LIKE '%q%'`) answered from trigram
-- indexes instead of a scan of every user.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX users_username_trgm ON users USING gin (lower(username) gin_trgm_ops);
CREATE INDEX users_email_trgm ON users USING gin (email gin_trgm_ops);
