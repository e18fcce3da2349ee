//! The store contract (integration_tests::store_contract) on both backends.

use std::sync::Arc;

use infra::wiring::Store;
use integration_tests::{db, store_contract::*};

async fn sqlite() -> Stores {
    Store::Sqlite(Arc::new(db::fresh_sqlite().await)).into()
}

async fn postgres() -> Stores {
    Store::Postgres(Arc::new(db::fresh_postgres().await)).into()
}

macro_rules! on_both_stores {
    ($($scenario:ident),* $(,)?) => {
        mod on_sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $scenario() {
                integration_tests::store_contract::$scenario(super::sqlite().await).await;
            })*
        }
        mod on_postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $scenario() {
                integration_tests::store_contract::$scenario(super::postgres().await).await;
            })*
        }
    };
}

on_both_stores!(
    a_slot_is_planned_once_and_an_unfinished_plan_resumes,
    a_plan_with_no_messages_is_done_at_once,
    a_run_is_done_when_its_last_message_is_and_keeps_the_last_five_errors,
    concurrent_workers_lose_no_count,
    a_settlement_counts_in_its_run_whether_or_not_its_worker_reports,
    recent_runs_come_newest_first_and_filter_by_task,
    a_skipped_slot_is_recorded_once_with_its_reason,
    a_skipped_slot_can_be_planned_by_hand_but_a_planned_one_never,
    an_unfinished_plan_is_found_and_does_not_count_for_catch_up,
    a_message_delivered_again_counts_once,
    a_messages_counts_add_up_however_its_copies_interleave,
    a_lease_has_one_holder_until_it_expires_or_is_released,
    a_claim_is_won_once_and_settled_for_good,
    a_crashed_workers_claim_expires_and_is_taken_over,
    only_the_claims_holder_settles_it,
    concurrent_claims_of_one_key_have_one_winner,
    users_are_paged_by_zone_and_read_back,
    a_user_moves_to_another_zone,
    moves_count_from_a_periods_first_plan,
    a_days_activity_adds_up_with_its_records_and_streak,
    a_weeks_report_adds_up_monday_to_sunday_with_eight_weeks_of_minutes,
    a_months_standings_are_built_once_and_ties_share_a_rank,
    inactivity_counts_from_the_last_workout_or_the_sign_up,
    challenge_notices_come_for_each_edge_falling_on_the_day,
    contacts_carry_enabled_devices_and_explicit_choices,
    contacts_of_many_users_are_read_at_once,
);

#[tokio::test]
async fn an_unreachable_database_is_named_without_its_password() {
    let e = infra::postgres::PgStore::connect("postgres://jobs:s3cret@127.0.0.1:1/app").await.err().unwrap();
    let message = e.to_string();
    assert!(message.contains("127.0.0.1:1/app"), "{message}");
    assert!(!message.contains("s3cret"), "{message}");
    assert!(shared::Error::from(e).is_retryable(), "a database that is down may come back");
}

#[tokio::test]
async fn an_unopenable_sqlite_file_is_named() {
    let url = "sqlite:///no/such/directory/jobs.db";
    let message = infra::sqlite::SqliteStore::connect(url).await.err().unwrap().to_string();
    assert!(message.contains("/no/such/directory/jobs.db"), "{message}");
}

/// Real PostgreSQL failures of the moment, provoked on purpose: each must reach the runtime as retryable, with
/// the SQLSTATE the adapter reads it by.
mod postgres_errors_of_the_moment {
    use integration_tests::db;
    use sqlx::{Connection, PgConnection};

    /// A fresh database with a one-row table `t`, and a connection to it.
    async fn connection() -> (String, PgConnection) {
        let url = db::fresh_postgres_url().await;
        let mut conn = PgConnection::connect(&url).await.expect("connecting");
        sqlx::query("CREATE TABLE t (id int PRIMARY KEY)").execute(&mut conn).await.unwrap();
        sqlx::query("INSERT INTO t VALUES (1)").execute(&mut conn).await.unwrap();
        (url, conn)
    }

    /// The error's SQLSTATE (none for a lost socket), and whether the runtime would retry it.
    fn read(e: sqlx::Error) -> (Option<String>, bool) {
        let code = e.as_database_error().and_then(|db| db.code()).map(|code| code.into_owned());
        (code, shared::Error::from(infra::Error::from(e)).is_retryable())
    }

    #[tokio::test]
    async fn a_statement_timeout_is_retryable() {
        let (_, mut conn) = connection().await;
        sqlx::query("SET statement_timeout = '10ms'").execute(&mut conn).await.unwrap();
        let e = sqlx::query("SELECT pg_sleep(1)").execute(&mut conn).await.unwrap_err();
        assert_eq!(read(e), (Some("57014".into()), true));
    }

    #[tokio::test]
    async fn a_write_in_a_read_only_transaction_is_retryable() {
        let (_, mut conn) = connection().await;
        sqlx::query("SET default_transaction_read_only = on").execute(&mut conn).await.unwrap();
        let e = sqlx::query("INSERT INTO t VALUES (2)").execute(&mut conn).await.unwrap_err();
        assert_eq!(read(e), (Some("25006".into()), true));
    }

    #[tokio::test]
    async fn a_row_lock_not_available_is_retryable() {
        let (url, mut holder) = connection().await;
        let mut held = holder.begin().await.unwrap();
        sqlx::query("SELECT id FROM t WHERE id = 1 FOR UPDATE").execute(&mut *held).await.unwrap();
        let mut other = PgConnection::connect(&url).await.unwrap();
        let e = sqlx::query("SELECT id FROM t WHERE id = 1 FOR UPDATE NOWAIT").execute(&mut other).await.unwrap_err();
        assert_eq!(read(e), (Some("55P03".into()), true));
        held.rollback().await.unwrap();
    }

    #[tokio::test]
    async fn a_connection_terminated_by_an_administrator_is_retryable() {
        let (url, mut admin) = connection().await;
        let mut victim = PgConnection::connect(&url).await.unwrap();
        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(&mut victim).await.unwrap();
        let terminated: bool =
            sqlx::query_scalar("SELECT pg_terminate_backend($1)").bind(pid).fetch_one(&mut admin).await.unwrap();
        assert!(terminated);
        let e = sqlx::query("SELECT 1").execute(&mut victim).await.unwrap_err();
        let (code, retryable) = read(e);
        // The server sends FATAL 57P01 before it closes the socket; a client that reads only the closed socket
        // sees an I/O error, retryable too.
        assert!(retryable, "{code:?}");
        assert!(matches!(code.as_deref(), Some("57P01") | None), "{code:?}");
    }
}

/// The pool pings a connection before a statement only when it may have died since its last use
/// (`connect::Liveness`): one killed meanwhile, as a failover or a rotation ending every session does, is then
/// replaced before a statement meets it.
mod a_pooled_connection_killed_while_idle {
    use infra::postgres::PgStore;
    use sqlx::{Connection, PgConnection};

    /// A store, and the backend of its one connection, which is killed.
    async fn killed() -> (PgStore, i32) {
        let url = integration_tests::db::fresh_postgres_url().await;
        let store = PgStore::connect(&url).await.unwrap();
        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(store.pool()).await.unwrap();
        let mut admin = PgConnection::connect(&url).await.unwrap();
        let terminated: bool =
            sqlx::query_scalar("SELECT pg_terminate_backend($1)").bind(pid).fetch_one(&mut admin).await.unwrap();
        assert!(terminated);
        (store, pid)
    }

    async fn backend(store: &PgStore) -> i32 {
        sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(store.pool()).await.expect("a live connection")
    }

    #[tokio::test]
    async fn is_replaced_unseen_by_the_next_invocation() {
        let (store, killed) = killed().await;
        store.invocation_begins();
        assert_ne!(backend(&store).await, killed);
    }

    #[tokio::test]
    async fn is_replaced_unseen_after_a_second() {
        let (store, killed) = killed().await;
        tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
        assert_ne!(backend(&store).await, killed);
    }
}

/// The trigger that stamps a user's move runs inside the app's own transactions: it must never make one fail.
mod the_zone_move_trigger {
    use integration_tests::db;
    use sqlx::{Connection, PgConnection};

    /// A fresh migrated database, a connection to it, and a user in Kolkata.
    async fn user() -> (PgConnection, i64) {
        let mut conn = PgConnection::connect(&db::fresh_postgres_url().await).await.unwrap();
        let id = sqlx::query_scalar(
            "INSERT INTO users (name, email, time_zone) VALUES ('Ana', 'ana@example.com', 'Asia/Kolkata') RETURNING id",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        (conn, id)
    }

    async fn moves(conn: &mut PgConnection) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM zone_moves").fetch_one(conn).await.unwrap()
    }

    /// The app's role may update users without any grant on zone_moves: the trigger runs as its owner.
    #[tokio::test]
    async fn the_apps_role_needs_no_grant_of_its_own() {
        let (mut conn, id) = user().await;
        let role = format!("jobs_test_app_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        for statement in [
            format!("CREATE ROLE {role}"),
            format!("GRANT SELECT, UPDATE ON users TO {role}"),
            format!("SET ROLE {role}"),
        ] {
            sqlx::query(&statement).execute(&mut conn).await.unwrap();
        }
        let moved =
            sqlx::query("UPDATE users SET time_zone = 'Europe/London' WHERE id = $1").bind(id).execute(&mut conn).await;
        for statement in ["RESET ROLE".to_owned(), format!("DROP OWNED BY {role}"), format!("DROP ROLE {role}")] {
            sqlx::query(&statement).execute(&mut conn).await.unwrap();
        }
        moved.unwrap();
        assert_eq!(moves(&mut conn).await, 1);
    }

    /// A user who moves and is deleted in one transaction: the stamp, taken at the commit, is skipped, not a
    /// broken foreign key that would undo the app's commit.
    #[tokio::test]
    async fn a_user_moved_and_deleted_in_one_transaction_commits() {
        let (mut conn, id) = user().await;
        let mut tx = conn.begin().await.unwrap();
        sqlx::query("UPDATE users SET time_zone = 'Europe/London' WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .unwrap();
        sqlx::query("DELETE FROM users WHERE id = $1").bind(id).execute(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(moves(&mut conn).await, 0);
    }
}

/// How the fitness statements read a user's history on PostgreSQL, from their plans over 200 users' workouts.
mod the_fitness_statements {
    use chrono::{NaiveDate, Utc};
    use infra::postgres::{PgStore, DAY_ACTIVITY, USER_STATS_REFRESH};
    use integration_tests::db;
    use serde_json::Value;
    use shared::ports::ActivityStore;

    /// A fresh store with 200 users, their workouts as `workouts` inserts them (from `users u`), vacuumed and
    /// analysed as autovacuum leaves a table the app inserts into (statistics, and the visibility map that an
    /// index-only scan needs); and the users' ids.
    async fn two_hundred_users(workouts: &str) -> (PgStore, Vec<i64>) {
        let store = db::fresh_postgres().await;
        let pool = store.pool();
        for statement in [
            "INSERT INTO users (name, email, time_zone)
             SELECT 'u' || g, 'u' || g || '@example.com', 'UTC' FROM generate_series(1, 200) g",
            workouts,
            "VACUUM ANALYZE users, workouts",
        ] {
            sqlx::query(statement).execute(pool).await.unwrap();
        }
        let users = sqlx::query_scalar("SELECT id FROM users ORDER BY id").fetch_all(pool).await.unwrap();
        (store, users)
    }

    /// The most rows any one node of the plan produced, over all its loops.
    fn most_rows(node: &Value) -> f64 {
        let own = node["Actual Rows"].as_f64().unwrap_or(0.0) * node["Actual Loops"].as_f64().unwrap_or(0.0);
        let children = node["Plans"].as_array().into_iter().flatten().map(most_rows);
        children.fold(own, f64::max)
    }

    /// Every node of the plan that reads `relation`, anywhere in it.
    fn reading<'a>(node: &'a Value, relation: &str, found: &mut Vec<&'a Value>) {
        if node["Relation Name"] == relation {
            found.push(node);
        }
        for child in node["Plans"].as_array().into_iter().flatten() {
            reading(child, relation, found);
        }
    }

    /// The daily summary's activity statement walks a streak back from its day only as far as its first day,
    /// whatever the user did before it. With the day-before probe written as `NOT EXISTS`, PostgreSQL planned an
    /// anti-join that read each user's whole history, so a chunk cost grew with the years of workouts behind it.
    #[tokio::test]
    async fn the_activity_statement_walks_a_streak_not_the_history_before_it() {
        // Each user has 200 workouts every other day up to 2026-11-20, then the 21st and the 22nd.
        let (store, users) = two_hundred_users(
            "INSERT INTO workouts (user_id, name, started_at, local_date, duration_minutes)
             SELECT u.id, 'Run', d + time '07:00', d, 30 FROM users u
             CROSS JOIN (SELECT date '2026-11-20' - 2 * g AS d FROM generate_series(0, 199) g
                         UNION ALL VALUES (date '2026-11-21'), (date '2026-11-22')) days",
        )
        .await;
        let day = NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
        let due: Vec<(i64, NaiveDate)> = users.iter().map(|u| (*u, day)).collect();
        let streaks: Vec<i64> = store.day_activity(&due).await.unwrap().iter().map(|a| a.streak_days).collect();
        assert_eq!(streaks, vec![3; 200], "the 20th, 21st and 22nd");

        let explain = format!("EXPLAIN (ANALYZE, FORMAT JSON) {DAY_ACTIVITY}");
        let plan: Value = sqlx::query_scalar(&explain)
            .bind(&users)
            .bind(vec![day; users.len()])
            .fetch_one(store.pool())
            .await
            .unwrap();
        let most = most_rows(&plan[0]["Plan"]);
        // A streak of three is four steps down a user's days at most: 800 rows for the 200 users.
        assert!(most <= 800.0, "a node of the plan read {most} rows of the users' 40,400 workouts: {plan:#}");
    }

    /// user-stats reads a chunk's window of workouts from the index of the users' days alone. The app writes each
    /// workout as it ends, so a user's month of workouts lies on a month of heap pages, one page a workout; the
    /// columns the window wants (id, minutes) are in that index.
    #[tokio::test]
    async fn user_stats_reads_the_window_from_the_index_of_the_users_days_alone() {
        // Each user has a workout a day for the 60 days up to 2026-11-22, written day by day as the app would.
        let (store, users) = two_hundred_users(
            "INSERT INTO workouts (user_id, name, started_at, local_date, duration_minutes)
             SELECT u.id, 'Run', d + time '07:00', d, 30
             FROM generate_series(date '2026-09-24', date '2026-11-22', interval '1 day') d CROSS JOIN users u
             ORDER BY d, u.id",
        )
        .await;
        let (start, end) =
            (NaiveDate::from_ymd_opt(2026, 10, 24).unwrap(), NaiveDate::from_ymd_opt(2026, 11, 22).unwrap());

        let mut tx = store.pool().begin().await.unwrap();
        let explain = format!("EXPLAIN (ANALYZE, FORMAT JSON) {USER_STATS_REFRESH}");
        let plan: Value = sqlx::query_scalar(&explain)
            .bind(&users[..50])
            .bind(start)
            .bind(end)
            .bind(Utc::now())
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        tx.rollback().await.unwrap();

        let mut scans = vec![];
        reading(&plan[0]["Plan"], "workouts", &mut scans);
        assert_eq!(scans.len(), 1, "one read of the window: {plan:#}");
        let scan = scans[0];
        assert_eq!(scan["Node Type"], "Index Only Scan", "{plan:#}");
        assert_eq!(scan["Actual Rows"].as_f64().unwrap() * scan["Actual Loops"].as_f64().unwrap(), 1500.0);
        assert_eq!(scan["Heap Fetches"], 0, "{plan:#}");
    }
}
