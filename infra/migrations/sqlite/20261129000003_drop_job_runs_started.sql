-- No statement reads job_runs by start time (the history reads by slot, through job_runs_slot), and every plan
-- wrote this index twice: when its run starts and when a skipped slot is planned again.
DROP INDEX job_runs_started;
