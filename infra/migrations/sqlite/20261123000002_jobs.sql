-- The jobs' own tables, as in the PostgreSQL schema, plus the embedded queue's.
CREATE TABLE job_runs (
    task          TEXT NOT NULL,
    slot          TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('planning', 'planned', 'done', 'skipped')),
    planned       INTEGER NOT NULL DEFAULT 0,
    messages      INTEGER NOT NULL DEFAULT 0,
    messages_done INTEGER NOT NULL DEFAULT 0,
    sent          INTEGER NOT NULL DEFAULT 0,
    skipped       INTEGER NOT NULL DEFAULT 0,
    failed        INTEGER NOT NULL DEFAULT 0,
    started_at    TEXT NOT NULL,
    finished_at   TEXT,
    errors        TEXT NOT NULL DEFAULT '[]',   -- JSON array, the last five, newest last
    PRIMARY KEY (task, slot)
);
CREATE INDEX job_runs_started ON job_runs (started_at DESC);

CREATE TABLE deliveries (
    task       TEXT NOT NULL,
    subject    TEXT NOT NULL,
    period     TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('in_progress', 'done', 'retryable', 'failed')),
    attempts   INTEGER NOT NULL DEFAULT 1,
    expires_at TEXT NOT NULL,
    last_error TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (task, subject, period)
);

CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at TEXT NOT NULL
);

-- The embedded queue: SQS semantics (visibility timeout, receive count, dead-letter after max receives).
CREATE TABLE queue_messages (
    id            TEXT PRIMARY KEY,
    queue         TEXT NOT NULL,
    body          TEXT NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    visible_at    TEXT NOT NULL,
    receipt       TEXT,                -- changes at every receive; an old receipt no longer deletes
    sent_at       TEXT NOT NULL
);
CREATE INDEX queue_messages_visible ON queue_messages (queue, visible_at);

CREATE TABLE dead_letters (
    id            TEXT PRIMARY KEY,
    queue         TEXT NOT NULL,
    body          TEXT NOT NULL,
    reason        TEXT NOT NULL,
    receive_count INTEGER NOT NULL,
    dead_at       TEXT NOT NULL
);
CREATE INDEX dead_letters_queue ON dead_letters (queue, dead_at);
