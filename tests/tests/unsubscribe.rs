//! The unsubscribe page on both stores: a valid one-click POST turns the kind off once; a replay, a bad token
//! or a gone user changes nothing, each with its own status.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use infra::wiring::Store;
use integration_tests::db;
use shared::{
    ports::{Kind, NewUser},
    unsubscribe::{http::respond, sign},
};

const KEY: &[u8] = b"the test signing key";
const ONE_CLICK: &str = "List-Unsubscribe=One-Click";

fn now() -> DateTime<Utc> {
    "2026-11-28T10:00:00Z".parse().unwrap()
}

/// (user, kind, channel, allowed) rows of `preferences`, and how many links were used.
async fn state(store: &Store) -> (Vec<(i64, String, String, bool)>, i64) {
    const PREFERENCES: &str = "SELECT user_id, kind, channel, allowed FROM preferences ORDER BY 1, 2, 3";
    const USED: &str = "SELECT count(*) FROM unsubscribes";
    match store {
        Store::Postgres(s) => (
            sqlx::query_as(PREFERENCES).fetch_all(s.pool()).await.unwrap(),
            sqlx::query_scalar(USED).fetch_one(s.pool()).await.unwrap(),
        ),
        Store::Sqlite(s) => (
            sqlx::query_as(PREFERENCES).fetch_all(s.db()).await.unwrap(),
            sqlx::query_scalar(USED).fetch_one(s.db()).await.unwrap(),
        ),
    }
}

async fn scenario(store: Store) {
    let ids = store
        .writer()
        .add_users(&[NewUser {
            name: "Ana".into(),
            email: "ana@example.com".into(),
            phone: None,
            time_zone: "Europe/Madrid".into(),
            email_opt_in: true,
        }])
        .await
        .unwrap();
    let ana = ids[0];
    let unsubscribes = store.unsubscribes();
    let post = |query: String, body: &'static str| {
        let unsubscribes = unsubscribes.clone();
        async move { respond(&*unsubscribes, KEY, "POST", &query, body, now()).await }
    };
    let valid = sign(KEY, ana, Kind::Reports, now() + Duration::days(60));
    let before = state(&store).await;
    assert_eq!(before, (vec![], 0));

    // Bad tokens change nothing.
    let forged = sign(b"another key", ana, Kind::Reports, now() + Duration::days(60));
    let expired = sign(KEY, ana, Kind::Reports, now() - Duration::seconds(1));
    let tampered = valid.replacen(&ana.to_string(), &(ana + 1).to_string(), 1);
    for (token, status) in [("nonsense".to_owned(), 400), (forged, 403), (expired, 410), (tampered, 403)] {
        let answer = post(format!("token={token}"), ONE_CLICK).await;
        assert_eq!(answer.status, status, "{token}: {}", answer.html);
    }
    assert_eq!(state(&store).await, before, "a bad token changed something");

    // A GET only asks.
    let answer = respond(&*unsubscribes, KEY, "GET", &format!("token={valid}"), "", now()).await;
    assert_eq!(answer.status, 200);
    assert_eq!(state(&store).await, before, "a GET changed something");

    // The one-click POST turns reports off by email, once.
    let answer = post(format!("token={valid}"), ONE_CLICK).await;
    assert_eq!(answer.status, 200, "{}", answer.html);
    let after = state(&store).await;
    assert_eq!(after, (vec![(ana, "reports".into(), "email".into(), false)], 1));
    let replay = post(format!("token={valid}"), ONE_CLICK).await;
    assert_eq!(replay.status, 409, "{}", replay.html);
    assert_eq!(state(&store).await, after, "a replay changed something");

    // A gone user: nothing recorded, so nothing to replay either.
    let gone = sign(KEY, ana + 1_000, Kind::Reports, now() + Duration::days(60));
    assert_eq!(post(format!("token={gone}"), ONE_CLICK).await.status, 404);
    assert_eq!(state(&store).await, after, "a gone user changed something");

    // The form posts the token in its body.
    let reminders = sign(KEY, ana, Kind::Reminders, now() + Duration::days(60));
    let answer = respond(&*unsubscribes, KEY, "POST", "", &format!("token={reminders}&{ONE_CLICK}"), now()).await;
    assert_eq!(answer.status, 200, "{}", answer.html);
    let (preferences, used) = state(&store).await;
    assert_eq!(used, 2);
    assert!(preferences.contains(&(ana, "reminders".into(), "email".into(), false)), "{preferences:?}");
}

#[tokio::test]
async fn on_sqlite() {
    scenario(Store::Sqlite(Arc::new(db::fresh_sqlite().await))).await;
}

#[tokio::test]
async fn on_postgres() {
    scenario(Store::Postgres(Arc::new(db::fresh_postgres().await))).await;
}
