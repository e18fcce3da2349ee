-- On-demand jobs: one row per request a user made (a meal photo to recognise…), its state written by the job
-- runtime, never by a task, so that every on-demand task has it. The app polls it by id.
CREATE TABLE job_requests (
    id          TEXT PRIMARY KEY,             -- the request's id: for food recognition, the upload's
    kind        TEXT NOT NULL,                -- the task that works it
    user_id     BIGINT NOT NULL,              -- no foreign key: a request of a deleted user still ends, with why
    state       TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
    attempts    INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    result      JSONB,                        -- succeeded: what it produced
    reason      TEXT,                         -- failed: why; queued again: why the last attempt failed
    redrivable  BOOLEAN NOT NULL DEFAULT FALSE, -- failed for want of tries: a redrive from the DLQ runs it again
    retry_at    TIMESTAMPTZ,                  -- queued again: the next attempt, at the earliest
    held_until  TIMESTAMPTZ,                  -- running: its worker's hold; past it, a redelivery takes over
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ
);
CREATE INDEX job_requests_user ON job_requests (user_id, created_at DESC);
-- job-history retention deletes requests not changed for its days.
CREATE INDEX job_requests_updated_at ON job_requests (updated_at);

-- The users' food logs: one entry per recognised meal photo, whatever its event's deliveries.
CREATE TABLE food_entries (
    upload_id  TEXT PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    image_key  TEXT NOT NULL,                 -- the photo in the uploads bucket
    name       TEXT NOT NULL,
    calories   DOUBLE PRECISION NOT NULL CHECK (calories >= 0),
    protein_g  DOUBLE PRECISION NOT NULL CHECK (protein_g >= 0),
    carbs_g    DOUBLE PRECISION NOT NULL CHECK (carbs_g >= 0),
    fat_g      DOUBLE PRECISION NOT NULL CHECK (fat_g >= 0),
    confidence DOUBLE PRECISION NOT NULL CHECK (confidence BETWEEN 0 AND 1),
    logged_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX food_entries_user ON food_entries (user_id, logged_at DESC);
