-- The mail suppression list, as in the PostgreSQL schema; times are `stamp()` text.
CREATE TABLE mail_suppressions (
    address     TEXT PRIMARY KEY CHECK (address = lower(address)),
    reason      TEXT NOT NULL CHECK (reason IN ('bounce', 'complaint')),
    feedback_id TEXT NOT NULL,
    subtype     TEXT,
    first_at    TEXT NOT NULL,
    last_at     TEXT NOT NULL,
    count       INTEGER NOT NULL DEFAULT 1 CHECK (count >= 1)
);
