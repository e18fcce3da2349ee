-- The fitness tasks beyond the daily summary, as in the PostgreSQL schema.

-- Owned by the app. No check that ends_on >= starts_on: the notifications report such rows rather than fail.
CREATE TABLE challenges (
    id        INTEGER PRIMARY KEY,
    title     TEXT NOT NULL,
    starts_on TEXT NOT NULL,        -- YYYY-MM-DD
    ends_on   TEXT NOT NULL
);
CREATE INDEX challenges_starts_on ON challenges (starts_on);
CREATE INDEX challenges_ends_on ON challenges (ends_on);

CREATE TABLE challenge_participants (
    challenge_id INTEGER NOT NULL REFERENCES challenges (id) ON DELETE CASCADE,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (challenge_id, user_id)
);
CREATE INDEX challenge_participants_user ON challenge_participants (user_id);

-- A month's standings, built once: whoever inserts the month's row here builds them in the same transaction.
CREATE TABLE standings_months (
    month    TEXT PRIMARY KEY,      -- the month's first day
    users    INTEGER NOT NULL,
    built_at TEXT NOT NULL
);

CREATE TABLE month_standings (
    month    TEXT NOT NULL REFERENCES standings_months (month) ON DELETE CASCADE,
    user_id  INTEGER NOT NULL,      -- no foreign key: a deleted user's rank stays as everyone saw it
    workouts INTEGER NOT NULL,
    minutes  INTEGER NOT NULL,
    rank     INTEGER NOT NULL,      -- competition ranking by minutes, most first: 1, 1, 3
    below    INTEGER NOT NULL,      -- ranked users with strictly fewer minutes, for the percentile
    PRIMARY KEY (month, user_id)
);
