//! The production store: PostgreSQL through sqlx.

/// The PostgreSQL schema: app tables and job tables.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");
