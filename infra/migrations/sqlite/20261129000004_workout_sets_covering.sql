-- Every reader of sets finds them by workout and reads these columns of each: the summaries, the reports,
-- user-stats, the week-volume and trending boards. With them in the index, a set is read in one b-tree rather
-- than two (its index entry, then its row by rowid). Over the simulation's year, SQLite's time for the
-- week-volume board fell by 19 %, the trending exercises' by 21 %, user-stats' by 8 % (BENCHMARKS.md). It
-- replaces the index on workout_id alone, so a set's insert still writes one index (2.3 µs → 2.8 µs a set).
-- Measured on SQLite only; PostgreSQL keeps its index on workout_id.
DROP INDEX workout_sets_workout;
CREATE INDEX workout_sets_workout ON workout_sets (workout_id, exercise_id, weight_kg, reps, personal_record);
