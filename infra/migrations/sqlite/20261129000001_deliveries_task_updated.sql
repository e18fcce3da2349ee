-- The retention deletes old keys of some tasks only (the others' keys are kept whatever their age): by task,
-- then age, it reads the keys it deletes and no more. By age alone it read every kept key older than the cutoff
-- on each batch, and without statistics SQLite took the primary key instead, reading every key of the tasks
-- (11 ms a batch against a year of the simulation's keys).
DROP INDEX deliveries_updated;
CREATE INDEX deliveries_task_updated ON deliveries (task, updated_at);
