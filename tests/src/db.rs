//! Fresh, migrated databases for one test each: a SQLite file under the temp dir, or a new PostgreSQL
//! database on the server `DATABASE_URL` names (default: the local one, user postgres).

use infra::{postgres::PgStore, sqlite::SqliteStore};
use sqlx::{Connection, PgConnection};

/// The PostgreSQL server the tests make their databases on.
pub fn server_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Test databases are named `jobs_test_<unix seconds>_<random>`, so old ones can be told apart.
const PREFIX: &str = "jobs_test_";
/// Databases older than this are left over from earlier runs, whatever became of them.
const STALE_AFTER_SECS: u64 = 2 * 60 * 60;

fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_secs()
}

fn unique(prefix: &str) -> String {
    format!("{prefix}{}_{}", now_secs(), &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// Drops the test databases earlier runs left behind (once per test process): a run of its own that is still
/// going is younger than `STALE_AFTER_SECS`.
async fn drop_stale(admin: &mut PgConnection) {
    static ONCE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    ONCE.get_or_init(|| async {
        let names: Vec<String> = sqlx::query_scalar("SELECT datname FROM pg_database WHERE starts_with(datname, $1)")
            .bind(PREFIX)
            .fetch_all(&mut *admin)
            .await
            .unwrap_or_default();
        for name in names {
            let created = name[PREFIX.len()..].split('_').next().and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
            if now_secs().saturating_sub(created) > STALE_AFTER_SECS {
                // Another process may be dropping it too: best effort.
                let _ =
                    sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).execute(&mut *admin).await;
            }
        }
    })
    .await;
}

pub async fn fresh_sqlite() -> SqliteStore {
    let path = std::env::temp_dir().join(format!("{}.db", unique(PREFIX)));
    let store = SqliteStore::connect(&format!("sqlite://{}", path.display())).await.expect("opening SQLite");
    store.migrate().await.expect("migrating SQLite");
    store
}

/// A new database on the server, migrated; its URL. Left behind after the test (a failed test's data can be
/// looked at) and dropped by a test run two hours later.
pub async fn fresh_postgres_url() -> String {
    let server = server_url();
    let name = unique(PREFIX);
    let mut admin = PgConnection::connect(&server)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {server} (set DATABASE_URL): {e}"));
    drop_stale(&mut admin).await;
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
