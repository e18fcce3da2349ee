-- The newest workout (by id, the order the app writes them in) of the user's window when their stats were
-- computed: a user is due again when a workout of the window has a greater id, that is when one was written
-- since, whenever it started (a phone offline writes it days later). Null for rows computed before this column:
-- their users are due once, the night after, if they have a workout in the window. Without a default, adding
-- it rewrites nothing.
ALTER TABLE user_stats ADD COLUMN last_workout_id BIGINT;
