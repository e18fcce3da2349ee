-- Who moved zone, and when each task first planned each period, as in the PostgreSQL schema. Both are stamped by
-- SQLite's own clock (julianday, in days), unlike the other timestamps: the app's write stamps a move, and the two
-- must compare on one clock whatever clock the jobs run on. `progress` is no longer read or written.
CREATE TABLE zone_moves (
    user_id  INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    moved_at REAL NOT NULL
);

CREATE TRIGGER users_zone_moved AFTER UPDATE OF time_zone ON users
WHEN OLD.time_zone IS NOT NEW.time_zone
BEGIN
    INSERT INTO zone_moves (user_id, moved_at) VALUES (NEW.id, julianday('now'))
    ON CONFLICT (user_id) DO UPDATE SET moved_at = excluded.moved_at;
END;

CREATE TABLE period_plans (
    task       TEXT NOT NULL,
    period     TEXT NOT NULL,
    started_at REAL NOT NULL DEFAULT (julianday('now')),
    PRIMARY KEY (task, period)
);
