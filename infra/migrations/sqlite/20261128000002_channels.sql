-- SMS and push, and each user's channel choices. Owned by the app; here so the jobs can be run and tested alone.
CREATE TABLE devices (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    endpoint_arn TEXT NOT NULL UNIQUE,      -- the SNS platform endpoint
    platform     TEXT NOT NULL,             -- apns, fcm…
    enabled      INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX devices_user ON devices (user_id);

-- A user's explicit choice for a kind of message on a channel; absent means the channel's default.
CREATE TABLE preferences (
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind    TEXT NOT NULL CHECK (kind IN ('reports', 'reminders', 'challenges')),
    channel TEXT NOT NULL CHECK (channel IN ('email', 'sms', 'push')),
    allowed INTEGER NOT NULL,
    PRIMARY KEY (user_id, kind, channel)
);
