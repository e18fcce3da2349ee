-- The app's tables the jobs read. Owned by the app; here so the jobs can be run and tested alone.
CREATE TABLE users (
    id           BIGSERIAL PRIMARY KEY,
    name         TEXT NOT NULL,
    email        TEXT NOT NULL UNIQUE,
    phone        TEXT,
    time_zone    TEXT NOT NULL,               -- IANA name, e.g. Asia/Kolkata
    email_opt_in BOOLEAN NOT NULL DEFAULT TRUE,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX users_time_zone_id ON users (time_zone, id);

CREATE TABLE exercises (
    id   BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);

CREATE TABLE workouts (
    id               BIGSERIAL PRIMARY KEY,
    user_id          BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name             TEXT NOT NULL,
    started_at       TIMESTAMPTZ NOT NULL,
    -- The user's calendar day of the workout, as the app recorded it in their zone at the time.
    local_date       DATE NOT NULL,
    duration_minutes INTEGER NOT NULL CHECK (duration_minutes >= 0),
    calories         INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX workouts_user_day ON workouts (user_id, local_date);

CREATE TABLE workout_sets (
    id              BIGSERIAL PRIMARY KEY,
    workout_id      BIGINT NOT NULL REFERENCES workouts (id) ON DELETE CASCADE,
    exercise_id     BIGINT NOT NULL REFERENCES exercises (id),
    weight_kg       DOUBLE PRECISION NOT NULL DEFAULT 0,
    reps            INTEGER NOT NULL CHECK (reps >= 0),
    personal_record BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX workout_sets_workout ON workout_sets (workout_id);
