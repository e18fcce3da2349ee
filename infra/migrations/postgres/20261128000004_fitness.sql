-- The fitness tasks beyond the daily summary: the app's challenges, and the monthly standings the jobs build.

-- Owned by the app; here so the jobs can be run and tested alone. No check that ends_on >= starts_on: the app's
-- rows may be wrong, and the challenge notifications report such rows rather than fail on them.
CREATE TABLE challenges (
    id        BIGSERIAL PRIMARY KEY,
    title     TEXT NOT NULL,
    starts_on DATE NOT NULL,
    ends_on   DATE NOT NULL
);
-- The notifications look challenges up by the day they start or end.
CREATE INDEX challenges_starts_on ON challenges (starts_on);
CREATE INDEX challenges_ends_on ON challenges (ends_on);

CREATE TABLE challenge_participants (
    challenge_id BIGINT NOT NULL REFERENCES challenges (id) ON DELETE CASCADE,
    user_id      BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (challenge_id, user_id)
);
CREATE INDEX challenge_participants_user ON challenge_participants (user_id);

-- A month's standings, built once for every user at the same moment, so that ranks agree whatever the zone
-- (and so the day) each user's report is sent in. A month's row here is written in the transaction that
-- builds its standings: whoever inserts it builds them, anyone else finds them built.
CREATE TABLE standings_months (
    month    DATE PRIMARY KEY,          -- the month's first day
    users    INTEGER NOT NULL,          -- how many users were ranked
    built_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE month_standings (
    month    DATE NOT NULL REFERENCES standings_months (month) ON DELETE CASCADE,
    user_id  BIGINT NOT NULL,           -- no foreign key: a deleted user's rank stays as everyone saw it
    workouts INTEGER NOT NULL,
    minutes  BIGINT NOT NULL,
    rank     INTEGER NOT NULL,          -- competition ranking by minutes, most first: 1, 1, 3
    below    INTEGER NOT NULL,          -- ranked users with strictly fewer minutes, for the percentile
    PRIMARY KEY (month, user_id)
);
