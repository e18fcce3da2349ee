-- A delivery's row is written twice within moments: inserted by its claim, then updated by its settlement.
-- The settlement changes no indexed column (`updated_at` stays the claim's: a key's age, for the retention,
-- counts from its last claim), so with room on the page its new version is heap-only: no entry in the primary
-- key or in deliveries_task_updated. Half of each new page is kept for it. Existing pages keep their fill;
-- the lock taken (SHARE UPDATE EXCLUSIVE) blocks neither claims nor settlements.
ALTER TABLE deliveries SET (fillfactor = 50);
