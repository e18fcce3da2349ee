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
    a_lease_has_one_holder_until_it_expires_or_is_released,
    a_claim_is_won_once_and_settled_for_good,
    a_crashed_workers_claim_expires_and_is_taken_over,
    only_the_claims_holder_settles_it,
    concurrent_claims_of_one_key_have_one_winner,
    users_are_paged_by_zone_and_read_back,
    a_user_moves_to_another_zone,
    progress_moves_forward_only_per_task_and_subject,
    a_days_activity_adds_up_with_its_records_and_streak,
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
