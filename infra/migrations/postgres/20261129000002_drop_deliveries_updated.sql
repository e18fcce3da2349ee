-- no-transaction
-- Replaced by deliveries_task_updated, which serves both of its readers (the retention's batches and counts),
-- and one index fewer for every ledger write to keep. CONCURRENTLY: sends go on meanwhile.
DROP INDEX CONCURRENTLY IF EXISTS deliveries_updated;
