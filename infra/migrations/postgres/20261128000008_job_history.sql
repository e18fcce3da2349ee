-- Job-history retention (shared::tasks::maintenance::job_history_retention).

-- The oldest slot whose history is whole: raised by the retention before it deletes anything; a slot before
-- it is never planned or worked again. One row at most.
CREATE TABLE job_history_floor (
    only_row BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row),
    floor    TIMESTAMPTZ NOT NULL
);

-- The retention finds old keys and runs by age, a bounded batch at a time.
CREATE INDEX deliveries_updated ON deliveries (updated_at);
CREATE INDEX job_runs_slot ON job_runs (slot);
CREATE INDEX run_messages_slot ON run_messages (slot);
