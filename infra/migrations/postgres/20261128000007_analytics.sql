-- The analytics tasks: versioned boards (leaderboards, trending) and the 30-day stats cache (user-stats).

-- One version of one board: the board as built for one slot. (board, slot) is unique: a redelivered or
-- concurrent build of the same slot finds the version there and builds nothing. A version's entries are written
-- in the transaction that inserts it and never change after; readers find the version to read in boards_current.
CREATE TABLE board_versions (
    id       BIGSERIAL PRIMARY KEY,     -- the version number
    board    TEXT NOT NULL,             -- week-volume, week-workouts, streak, challenge-<id>, trending-…
    slot     TIMESTAMPTZ NOT NULL,
    entries  INTEGER NOT NULL,
    built_at TIMESTAMPTZ NOT NULL,
    UNIQUE (board, slot)
);

-- No foreign key to board_versions: checking it costs a lookup per entry (a quarter of a second for a board of
-- 80,000), and the builder, the only writer, deletes a version's entries with it.
CREATE TABLE board_entries (
    version    BIGINT NOT NULL,
    position   INTEGER NOT NULL,        -- display order from 1: by rank, then the board's tie order
    rank       INTEGER NOT NULL,        -- competition ranking: 1, 1, 3
    subject_id BIGINT,                  -- a user, an exercise; no foreign key: a board stays as it was built
    label      TEXT,                    -- a workout's or exercise's name (trending)
    score      DOUBLE PRECISION NOT NULL,
    recent     BIGINT,                  -- trending: the count in the last 7 days
    previous   BIGINT,                  -- trending: the count in the 7 days before
    PRIMARY KEY (version, position)
);

-- The version each board's readers read, switched in one short transaction once the new version is complete.
-- Switches only go forward in slot order. The version replaced stays until the next switch, for a reader paging
-- through it; older ones are deleted after each switch.
CREATE TABLE boards_current (
    board       TEXT PRIMARY KEY,
    version     BIGINT NOT NULL REFERENCES board_versions (id),
    slot        TIMESTAMPTZ NOT NULL,
    previous    BIGINT,
    switched_at TIMESTAMPTZ NOT NULL
);

-- Each user's stats over the 30 local days window_start .. window_end (the slot's UTC day), refreshed by
-- user-stats. A row is only ever replaced by one of a later window.
CREATE TABLE user_stats (
    user_id           BIGINT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    window_start      DATE NOT NULL,
    window_end        DATE NOT NULL,
    workouts          INTEGER NOT NULL,
    workouts_per_week DOUBLE PRECISION NOT NULL,
    minutes           BIGINT NOT NULL,
    volume_kg         DOUBLE PRECISION NOT NULL,
    pr_sets           INTEGER NOT NULL,
    -- Per exercise trained, by name: [{"exercise_id", "exercise", "best_weight_kg", "best_reps", "pr_sets"}]
    records           JSONB NOT NULL,
    computed_at       TIMESTAMPTZ NOT NULL
);

-- The boards read a week or two of every user's workouts by date.
CREATE INDEX workouts_local_date ON workouts (local_date);
