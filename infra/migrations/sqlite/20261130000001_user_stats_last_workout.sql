-- As on PostgreSQL: the newest workout (by id, the order the app writes them in) of the user's window when their
-- stats were computed, so that a workout written since, whenever it started, makes them due. Null for rows
-- computed before this column: their users are due once if they have a workout in the window.
ALTER TABLE user_stats ADD COLUMN last_workout_id INTEGER;
