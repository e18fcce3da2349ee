//! The embedded database's one connection, shared by the store and the embedded queues. It stands where a pool of
//! one connection stood, with the pool's semantics: a statement holds the connection while it runs (its rows are
//! read whole, as `fetch_all` reads them), a transaction for as long as it is open, and the others wait their turn
//! in order.
//!
//! Why not sqlx's pool of one connection: the pool checks a connection each time one is given back, by a ping
//! to the thread sqlx runs each SQLite connection on, from a task it spawns. Every statement sent to the pool was
//! then three turns between threads rather than one: a row read took 20–23 µs through the pool and 6–8 µs on
//! the connection held (`jobs bench statements`, BENCHMARKS.md), and a year of `jobs simulate` is a million
//! statements. A check is for a connection that can break under the pool, a server's; this one is a file opened
//! in this process.
//!
//! Whoever holds `lock()` (a transaction) must not call the store or a queue again until it lets go: that call
//! waits for the connection forever, where the pool's would have failed after its acquire timeout.

use std::fmt;
use std::sync::Arc;

use futures::{future::BoxFuture, stream::BoxStream, FutureExt, StreamExt};
use sqlx::{
    sqlite::{Sqlite, SqliteConnection, SqliteQueryResult, SqliteRow, SqliteStatement, SqliteTypeInfo},
    Describe, Either, Execute, Executor,
};
use tokio::sync::{Mutex, MutexGuard};

#[derive(Clone)]
pub struct Db(Arc<Mutex<SqliteConnection>>);

impl Db {
    pub fn new(connection: SqliteConnection) -> Self {
        Self(Arc::new(Mutex::new(connection)))
    }

    /// The connection, for a transaction (`begin` on it) or several statements in a row; others wait until the
    /// guard is dropped.
    pub async fn lock(&self) -> MutexGuard<'_, SqliteConnection> {
        self.0.lock().await
    }
}

impl fmt::Debug for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Db")
    }
}

impl<'c> Executor<'c> for &'c Db {
    type Database = Sqlite;

    fn fetch_many<'e, 'q: 'e, E>(self, query: E) -> BoxStream<'e, sqlx::Result<Either<SqliteQueryResult, SqliteRow>>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Sqlite>,
    {
        // Read whole while the connection is held, then handed out: the next statement need not wait on the
        // reader of this one.
        async move {
            let mut connection = self.lock().await;
            connection.fetch_many(query).collect::<Vec<_>>().await
        }
        .map(futures::stream::iter)
        .flatten_stream()
        .boxed()
    }

    fn fetch_optional<'e, 'q: 'e, E>(self, query: E) -> BoxFuture<'e, sqlx::Result<Option<SqliteRow>>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Sqlite>,
    {
        async move { self.lock().await.fetch_optional(query).await }.boxed()
    }

    fn prepare_with<'e, 'q: 'e>(
        self,
        sql: &'q str,
        parameters: &'e [SqliteTypeInfo],
    ) -> BoxFuture<'e, sqlx::Result<SqliteStatement<'q>>>
    where
        'c: 'e,
    {
        async move { self.lock().await.prepare_with(sql, parameters).await }.boxed()
    }

    fn describe<'e, 'q: 'e>(self, sql: &'q str) -> BoxFuture<'e, sqlx::Result<Describe<Sqlite>>>
    where
        'c: 'e,
    {
        async move { self.lock().await.describe(sql).await }.boxed()
    }
}
