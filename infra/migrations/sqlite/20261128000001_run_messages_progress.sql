-- Each message of a run, counted once however often it is delivered, as in the PostgreSQL schema.
CREATE TABLE run_messages (
    task     TEXT NOT NULL,
    slot     TEXT NOT NULL,
    part     INTEGER NOT NULL,
    sent     INTEGER NOT NULL DEFAULT 0,
    skipped  INTEGER NOT NULL DEFAULT 0,
    failed   INTEGER NOT NULL DEFAULT 0,
    reported_sent   INTEGER NOT NULL DEFAULT 0,
    reported_failed INTEGER NOT NULL DEFAULT 0,
    finished INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (task, slot, part)
);

CREATE INDEX job_runs_planning ON job_runs (task, slot) WHERE status = 'planning';

CREATE TABLE progress (
    task    TEXT NOT NULL,
    subject TEXT NOT NULL,
    period  TEXT NOT NULL,
    PRIMARY KEY (task, subject)
);
