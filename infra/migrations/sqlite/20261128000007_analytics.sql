-- The analytics tasks, as in the PostgreSQL schema: versioned boards and the 30-day stats cache.

-- One version of one board per (board, slot); its entries are written with it and never change after.
CREATE TABLE board_versions (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,   -- the version number: never reused after a delete
    board    TEXT NOT NULL,
    slot     TEXT NOT NULL,
    entries  INTEGER NOT NULL,
    built_at TEXT NOT NULL,
    UNIQUE (board, slot)
);

-- No foreign key to board_versions, as in PostgreSQL: the builder deletes a version's entries with it.
CREATE TABLE board_entries (
    version    INTEGER NOT NULL,
    position   INTEGER NOT NULL,    -- display order from 1
    rank       INTEGER NOT NULL,    -- competition ranking: 1, 1, 3
    subject_id INTEGER,             -- a user, an exercise
    label      TEXT,                -- a workout's or exercise's name
    score      REAL NOT NULL,
    recent     INTEGER,
    previous   INTEGER,
    PRIMARY KEY (version, position)
);

-- The version each board's readers read; the one replaced stays until the next switch.
CREATE TABLE boards_current (
    board       TEXT PRIMARY KEY,
    version     INTEGER NOT NULL REFERENCES board_versions (id),
    slot        TEXT NOT NULL,
    previous    INTEGER,
    switched_at TEXT NOT NULL
);

-- Each user's stats over the 30 local days window_start .. window_end; only replaced by a later window's.
CREATE TABLE user_stats (
    user_id           INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    window_start      TEXT NOT NULL,
    window_end        TEXT NOT NULL,
    workouts          INTEGER NOT NULL,
    workouts_per_week REAL NOT NULL,
    minutes           INTEGER NOT NULL,
    volume_kg         REAL NOT NULL,
    pr_sets           INTEGER NOT NULL,
    records           TEXT NOT NULL,    -- JSON, as in PostgreSQL
    computed_at       TEXT NOT NULL
);

CREATE INDEX workouts_local_date ON workouts (local_date);
