-- The jobs' own tables: runs, the delivery ledger, planner leases.
CREATE TABLE job_runs (
    task          TEXT NOT NULL,
    slot          TIMESTAMPTZ NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('planning', 'planned', 'done', 'skipped')),
    planned       BIGINT NOT NULL DEFAULT 0,
    messages      BIGINT NOT NULL DEFAULT 0,
    messages_done BIGINT NOT NULL DEFAULT 0,
    sent          BIGINT NOT NULL DEFAULT 0,
    skipped       BIGINT NOT NULL DEFAULT 0,
    failed        BIGINT NOT NULL DEFAULT 0,
    started_at    TIMESTAMPTZ NOT NULL,
    finished_at   TIMESTAMPTZ,
    errors        JSONB NOT NULL DEFAULT '[]',   -- the last five, newest last
    PRIMARY KEY (task, slot)
);
CREATE INDEX job_runs_started ON job_runs (started_at DESC);

CREATE TABLE deliveries (
    task       TEXT NOT NULL,
    subject    TEXT NOT NULL,
    period     TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('in_progress', 'done', 'retryable', 'failed')),
    attempts   INTEGER NOT NULL DEFAULT 1,
    expires_at TIMESTAMPTZ NOT NULL,            -- when an in_progress claim may be taken over
    last_error TEXT,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (task, subject, period)
);

CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
