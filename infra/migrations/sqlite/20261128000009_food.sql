-- On-demand jobs and the food log, as in the PostgreSQL schema.
CREATE TABLE job_requests (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    user_id     INTEGER NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
    attempts    INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    result      TEXT,                          -- JSON
    reason      TEXT,
    redrivable  INTEGER NOT NULL DEFAULT 0,
    retry_at    TEXT,
    held_until  TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    finished_at TEXT
);
CREATE INDEX job_requests_user ON job_requests (user_id, created_at DESC);
-- job-history retention deletes requests not changed for its days.
CREATE INDEX job_requests_updated_at ON job_requests (updated_at);

CREATE TABLE food_entries (
    upload_id  TEXT PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    image_key  TEXT NOT NULL,
    name       TEXT NOT NULL,
    calories   REAL NOT NULL CHECK (calories >= 0),
    protein_g  REAL NOT NULL CHECK (protein_g >= 0),
    carbs_g    REAL NOT NULL CHECK (carbs_g >= 0),
    fat_g      REAL NOT NULL CHECK (fat_g >= 0),
    confidence REAL NOT NULL CHECK (confidence BETWEEN 0 AND 1),
    logged_at  TEXT NOT NULL
);
CREATE INDEX food_entries_user ON food_entries (user_id, logged_at DESC);
