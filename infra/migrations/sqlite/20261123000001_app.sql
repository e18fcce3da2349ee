-- The app's tables the jobs read, as in the PostgreSQL schema. Timestamps are bound from Rust (sqlx's
-- chrono encoding, UTC), never from SQLite's own clock, so they compare as text.
CREATE TABLE users (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL,
    email        TEXT NOT NULL UNIQUE,
    phone        TEXT,
    time_zone    TEXT NOT NULL,
    email_opt_in INTEGER NOT NULL DEFAULT 1,
    created_at   TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX users_time_zone_id ON users (time_zone, id);

CREATE TABLE exercises (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);

CREATE TABLE workouts (
    id               INTEGER PRIMARY KEY,
    user_id          INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name             TEXT NOT NULL,
    started_at       TEXT NOT NULL,
    local_date       TEXT NOT NULL,   -- YYYY-MM-DD, the user's calendar day of the workout
    duration_minutes INTEGER NOT NULL CHECK (duration_minutes >= 0),
    calories         INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX workouts_user_day ON workouts (user_id, local_date);

CREATE TABLE workout_sets (
    id              INTEGER PRIMARY KEY,
    workout_id      INTEGER NOT NULL REFERENCES workouts (id) ON DELETE CASCADE,
    exercise_id     INTEGER NOT NULL REFERENCES exercises (id),
    weight_kg       REAL NOT NULL DEFAULT 0,
    reps            INTEGER NOT NULL CHECK (reps >= 0),
    personal_record INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX workout_sets_workout ON workout_sets (workout_id);
