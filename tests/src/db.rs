//! Fresh, migrated databases for one test each: a SQLite file under the temp dir, or a new PostgreSQL
//! database on the server `DATABASE_URL` names (default: the local one, user postgres).

use infra::{postgres::PgStore, sqlite::SqliteStore};
use sqlx::{Connection, PgConnection};

/// The PostgreSQL server the tests make their databases on.
pub fn server_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

pub async fn fresh_sqlite() -> SqliteStore {
    let path = std::env::temp_dir().join(format!("{}.db", unique("jobs_test")));
    let store = SqliteStore::connect(&format!("sqlite://{}", path.display())).await.expect("opening SQLite");
    store.migrate().await.expect("migrating SQLite");
    store
}

/// A new database on the server, migrated; its URL. Left behind after the test, as `#[sqlx::test]` does on
/// failure: names start with `jobs_test_`, and `make test` drops them before it runs.
pub async fn fresh_postgres_url() -> String {
    let server = server_url();
    let name = unique("jobs_test");
    let mut admin = PgConnection::connect(&server)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {server} (set DATABASE_URL): {e}"));
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.expect("creating a test database");
    let url = match server.rsplit_once('/') {
        Some((base, _)) if base.len() > "postgres://".len() => format!("{base}/{name}"),
        _ => format!("{server}/{name}"),
    };
    PgStore::connect(&url).await.expect("connecting to the test database").migrate().await.expect("migrating");
    url
}

pub async fn fresh_postgres() -> PgStore {
    PgStore::connect(&fresh_postgres_url().await).await.expect("connecting to the test database")
}
