//! The production store: PostgreSQL through sqlx. Lists of keys travel as arrays read with `UNNEST`, so every
//! port call is a constant number of statements whatever its size.

use std::{collections::HashMap, str::FromStr, time::Duration};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use shared::{
    ports::normalise,
    ports::{
        ActivityStore, AppWriter, Choice, ClaimState, Contact, Contacts, DayActivity, DeliveryKey, Device, Kind,
        Ledger, NewUser, NewWorkout, Progress, RunPart, RunRecord, RunStart, RunStore, Settled, SkippedSlot,
        SuppressedAddress, Suppression, Suppressions, Unsubscribed, Unsubscribes, WorkTally,
    },
    Result,
};
use sqlx::{
    postgres::{PgConnectOptions, PgPoolOptions, PgRow},
    types::Json,
    PgPool, Row,
};

use crate::{
    error::job,
    store::{activity, claims, contact_rows, run_rows, suppression_rows},
    Error,
};

/// The PostgreSQL schema: app tables and job tables.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

fn later(now: DateTime<Utc>, by: Duration) -> DateTime<Utc> {
    now + chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX)
}

pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects a small pool. Does not migrate: see `migrate`. An unreachable server is an error naming it by
    /// host, port and database, never with its password.
    pub async fn connect(url: &str) -> std::result::Result<Self, Error> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| Error::Connect { target: "(DATABASE_URL)".into(), message: e.to_string() })?
            // Small, index-driven queries: JIT compiling them (on misestimated fresh tables) costs more than
            // running them.
            .options([("jit", "off")]);
        let target = format!(
            "{}:{}/{}",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or(options.get_username())
        );
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await
            .map_err(|e| Error::Connect { target, message: e.to_string() })?;
        Ok(Self { pool })
    }

    pub async fn migrate(&self) -> std::result::Result<(), Error> {
        Ok(MIGRATOR.run(&self.pool).await?)
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

mod app;
mod contacts;
mod fitness;
mod history;
mod ledger;
mod maintenance;
mod progress;
mod requests;
mod runs;
mod shop;
mod suppressions;
mod unsubscribes;
