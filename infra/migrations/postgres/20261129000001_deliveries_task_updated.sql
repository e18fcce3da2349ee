-- no-transaction
-- The retention deletes the old keys of some tasks only, and keeps the others' whatever their age (the
-- reminders', order-notifications'). Through an index on (updated_at) each batch of 500 read every kept key older
-- than the cutoff, or PostgreSQL scanned the table for the first 500 it met: 200 ms a batch behind 2 million
-- kept keys, 1 s in age order, and growing with them. By (task, updated_at) a batch reads the keys it may delete
-- (10.7 ms, BENCHMARKS.md). CONCURRENTLY, so that sends go on while it builds: outside a transaction, alone in
-- its file. Should it fail halfway it leaves an INVALID index, which IF NOT EXISTS would take for built: drop
-- deliveries_task_updated by hand before running the migrations again.
CREATE INDEX CONCURRENTLY IF NOT EXISTS deliveries_task_updated ON deliveries (task, updated_at);
