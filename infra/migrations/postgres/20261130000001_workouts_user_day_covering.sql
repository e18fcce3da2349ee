-- no-transaction
-- The readers of a user's range of days want a workout's id, minutes or calories and nothing else of its row:
-- user-stats' window (id, minutes), the weekly report's days (id, minutes, calories), the monthly report's weeks
-- (minutes); the streak and inactivity-reminders want the days alone. The app writes each workout as it ends, so
-- a user's month of workouts lies on a month of heap pages, one page a workout. With those columns in the index
-- the range is read from the index alone. On 100,000 users' month laid out in time order (BENCHMARKS.md):
-- user-stats' first night 11,100-13,500 -> 15,300-16,800 users/s, the night after 4.5-5.2 -> 3.9-4.1 s of
-- work, weekly-report 13,500-16,800 -> 17,300-17,500 users/s; daily-summary about 4 % slower (its streak probes
-- walk a larger index); the index 59 -> 67 MB.
-- It replaces workouts_user_day (next migration), so a workout's insert still writes one index of the user's
-- days. CONCURRENTLY, so that the app's writes go on while it builds: outside a transaction, alone in its file.
-- Should it fail halfway it leaves an INVALID index, which IF NOT EXISTS would take for built: drop
-- workouts_user_day_covering by hand before running the migrations again.
CREATE INDEX CONCURRENTLY IF NOT EXISTS workouts_user_day_covering
    ON workouts (user_id, local_date) INCLUDE (id, duration_minutes, calories);
