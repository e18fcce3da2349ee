-- no-transaction
-- No statement reads job_runs by start time (the history reads by slot, through job_runs_slot), and every plan
-- wrote this index when its run started. CONCURRENTLY: plans go on meanwhile.
DROP INDEX CONCURRENTLY IF EXISTS job_runs_started;
