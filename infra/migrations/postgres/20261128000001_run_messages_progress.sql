-- Each message of a run, counted once however often SQS delivers it or a resumed plan sends it again: what its
-- attempts added to the run (job_runs' counters are the sums of these).
CREATE TABLE run_messages (
    task     TEXT NOT NULL,
    slot     TIMESTAMPTZ NOT NULL,
    part     BIGINT NOT NULL,
    sent     BIGINT NOT NULL DEFAULT 0,
    skipped  BIGINT NOT NULL DEFAULT 0,
    failed   BIGINT NOT NULL DEFAULT 0,
    finished BOOLEAN NOT NULL DEFAULT false,
    PRIMARY KEY (task, slot, part)
);

-- Every plan looks for its task's plans left unfinished by a dead planner.
CREATE INDEX job_runs_planning ON job_runs (task, slot) WHERE status = 'planning';

-- How far each subject's periodic side effect has been planned (the Progress port).
CREATE TABLE progress (
    task    TEXT NOT NULL,
    subject TEXT NOT NULL,
    period  TEXT NOT NULL,
    PRIMARY KEY (task, subject)
);
