-- The unsubscribe links used, by their nonce: each link works once. No foreign key to users: a used link
-- stays used whatever becomes of the account.
CREATE TABLE unsubscribes (
    nonce   TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL,
    kind    TEXT NOT NULL CHECK (kind IN ('reports', 'reminders', 'challenges')),
    at      TEXT NOT NULL
);
