//! `jobs bench statements`: what one statement costs the embedded store, through its connection (`infra::sqlite::Db`)
//! and through the pool of one connection sqlx offers instead, on one core as `jobs simulate` and `jobs demo` run.
//! Each is timed over the same statements on the same file: a row read, an autocommit update, and an update in a
//! transaction of its own.

use std::{str::FromStr, time::Instant};

use anyhow::Result;
use infra::sqlite::SqliteStore;
use sqlx::{
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
    Connection, Sqlite,
};

#[derive(clap::Args)]
pub struct StatementsArgs {
    /// Statements of each kind per round.
    #[arg(long, default_value_t = 20_000)]
    pub statements: u32,
    /// Rounds, each timing both.
    #[arg(long, default_value_t = 3)]
    pub rounds: u32,
}

pub async fn statements(args: StatementsArgs) -> Result<()> {
    let file = std::env::temp_dir().join(format!("bench-statements-{}.db", uuid::Uuid::new_v4()));
    let url = format!("sqlite://{}", file.display());
    let store = SqliteStore::connect(&url).await?;
    let db = store.db();
    sqlx::query("CREATE TABLE counter (name TEXT PRIMARY KEY, n INTEGER NOT NULL)").execute(db).await?;
    sqlx::query("INSERT INTO counter VALUES ('a', 0)").execute(db).await?;
    // The store's journal and synchronous settings: the two differ in how statements reach SQLite, not in what
    // SQLite does with them.
    let options = SqliteConnectOptions::from_str(&url)?
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal);
    let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options).await?;
    println!("µs a statement, {} of each kind a round, on one core", args.statements);
    println!("{:<28} {:>10} {:>16} {:>22}", "through", "row read", "autocommit write", "write in a transaction");
    let pool = &pool;
    for _ in 0..args.rounds {
        let n = args.statements;
        let held = [
            time(n, |_| async { read(db).await }).await?,
            time(n, |i| async move { write(db, i).await }).await?,
            time(n, |i| async move {
                let mut connection = db.lock().await;
                let mut tx = connection.begin().await?;
                write(&mut *tx, i).await?;
                Ok(tx.commit().await?)
            })
            .await?,
        ];
        let pooled = [
            time(n, |_| async { read(pool).await }).await?,
            time(n, |i| async move { write(pool, i).await }).await?,
            time(n, |i| async move {
                let mut tx = pool.begin().await?;
                write(&mut *tx, i).await?;
                Ok(tx.commit().await?)
            })
            .await?,
        ];
        for (name, [read, write, tx]) in [("the store's connection", held), ("a sqlx pool of one", pooled)] {
            println!("{name:<28} {read:>10.1} {write:>16.1} {tx:>22.1}");
        }
    }
    pool.close().await;
    drop(store);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
    }
    Ok(())
}

/// µs per call of `statement`, over `n` calls, each given its number.
async fn time<F, Fut>(n: u32, statement: F) -> Result<f64>
where
    F: Fn(u32) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let started = Instant::now();
    for i in 0..n {
        statement(i).await?;
    }
    Ok(started.elapsed().as_secs_f64() * 1e6 / f64::from(n))
}

async fn read<'c>(on: impl sqlx::Executor<'c, Database = Sqlite>) -> Result<()> {
    let _: i64 = sqlx::query_scalar("SELECT n FROM counter WHERE name = 'a'").fetch_one(on).await?;
    Ok(())
}

async fn write<'c>(on: impl sqlx::Executor<'c, Database = Sqlite>, i: u32) -> Result<()> {
    sqlx::query("UPDATE counter SET n = ?1 WHERE name = 'a'").bind(i).execute(on).await?;
    Ok(())
}
