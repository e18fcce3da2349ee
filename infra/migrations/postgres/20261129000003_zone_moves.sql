-- Who moved zone, and when each task first planned each period, both by the database's clock: a plan of a
-- period takes the period before it too for the users who moved since that period's first plan, who may have
-- fallen between two zones' plans of it (moved east past the local time); the ledger skips the keys of those who
-- did not. This replaces `progress`, which every plan rewrote for each of its users (a row a user, a day and a
-- task). `progress` is no longer read or written; it stays until a later release, since migrations only add and
-- the functions of the release before may still run while this one deploys.

-- A user's latest move. The row goes with the user.
CREATE TABLE zone_moves (
    user_id  BIGINT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    moved_at TIMESTAMPTZ NOT NULL
);

-- Runs as its owner (the role that migrates, which owns zone_moves), so the app's role needs no grant on it, with
-- the search path of its creation. A user deleted later in the same transaction is not recorded: the row would
-- break the app's commit on its foreign key.
CREATE FUNCTION record_zone_move() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT
AS $$
BEGIN
    INSERT INTO zone_moves (user_id, moved_at)
    SELECT NEW.id, clock_timestamp() WHERE EXISTS (SELECT 1 FROM users WHERE id = NEW.id)
    ON CONFLICT (user_id) DO UPDATE SET moved_at = excluded.moved_at;
    RETURN NULL;
END
$$;

-- Deferred, so the stamp is taken as the app's transaction commits, not when it changed the row: a transaction
-- open for a while would otherwise stamp its move long before a plan could see it.
CREATE CONSTRAINT TRIGGER users_zone_moved AFTER UPDATE OF time_zone ON users
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (OLD.time_zone IS DISTINCT FROM NEW.time_zone) EXECUTE FUNCTION record_zone_move();

-- When a task started planning a period, the first time. A task keeps the last three periods' rows.
CREATE TABLE period_plans (
    task       TEXT NOT NULL,
    period     TEXT NOT NULL,
    started_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (task, period)
);
