-- Who did what to which account: written in the same transaction as the
-- change it records, so a rolled-back change leaves no event and no event
-- exists without its change. Never holds a password or a token.
CREATE TABLE audit_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    action TEXT NOT NULL,
    actor_id INTEGER,
    subject_id INTEGER,
    ip TEXT,
    request_id TEXT,
    details TEXT NOT NULL DEFAULT '{}'
);

CREATE INDEX audit_events_subject ON audit_events (subject_id, id);
CREATE INDEX audit_events_actor ON audit_events (actor_id, id);
CREATE INDEX audit_events_action ON audit_events (action, id);
CREATE INDEX audit_events_at ON audit_events (at);
