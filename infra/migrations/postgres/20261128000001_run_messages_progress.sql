-- Each message of a run, counted once however often SQS delivers it or a resumed plan sends it again. The
-- ledger adds to sent and failed in the transaction that records each delivery, so a worker killed before it
-- reports still has its sends counted; the message's next report carries what job_runs has not seen yet
-- (sent - reported_sent) into its run.
CREATE TABLE run_messages (
    task     TEXT NOT NULL,
    slot     TIMESTAMPTZ NOT NULL,
    part     BIGINT NOT NULL,
    sent     BIGINT NOT NULL DEFAULT 0,
    skipped  BIGINT NOT NULL DEFAULT 0,
    failed   BIGINT NOT NULL DEFAULT 0,
    reported_sent   BIGINT NOT NULL DEFAULT 0,
    reported_failed BIGINT NOT NULL DEFAULT 0,
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
