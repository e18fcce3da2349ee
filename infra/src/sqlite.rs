//! The embedded store: SQLite through sqlx.

/// The SQLite schema: app tables, job tables and the embedded queue's tables.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
