-- no-transaction
-- Replaced by workouts_user_day_covering, which serves every reader of it, and one index fewer for every
-- workout the app writes. CONCURRENTLY: the app's writes go on meanwhile.
DROP INDEX CONCURRENTLY IF EXISTS workouts_user_day;
