//! The production store: PostgreSQL through sqlx. Lists of keys travel as arrays read with `UNNEST`, so every
//! port call is a constant number of statements whatever its size.

use std::{collections::HashMap, sync::Arc, time::Duration};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use shared::{
    ports::normalise,
    ports::{
        ActivityStore, AppWriter, Choice, ClaimState, Contact, Contacts, DayActivity, DeliveryKey, Device, Kind,
        Ledger, NewUser, NewWorkout, PlanHistory, RunPart, RunRecord, RunStart, RunStore, Settled, SkippedSlot,
        SuppressedAddress, Suppression, Suppressions, Unsubscribed, Unsubscribes, WorkTally, ZoneMoves,
        MOVE_COMMIT_SLACK,
    },
    Result,
};
use sqlx::{postgres::PgRow, types::Json, PgPool, Row};

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
    liveness: Arc<connect::Liveness>,
    /// Set when the credentials come from Secrets Manager: read again when the server refuses them.
    credentials: Option<connect::Credentials>,
}

impl PgStore {
    /// Connects a small pool to `url` (`connect::options` says how it is secured). Does not migrate: see
    /// `migrate`. An unreachable server is an error naming it by host, port and database, never its password.
    pub async fn connect(url: &str) -> std::result::Result<Self, Error> {
        let liveness = Arc::default();
        Ok(Self {
            pool: connect::pool(connect::options(url)?, Arc::clone(&liveness)).await?,
            liveness,
            credentials: None,
        })
    }

    /// Connects with the URL (or RDS JSON) the secret `arn` holds, read now and again whenever the server
    /// refuses it (`renew_credentials`).
    pub async fn connect_with_secret(
        client: aws_sdk_secretsmanager::Client,
        arn: String,
    ) -> std::result::Result<Self, Error> {
        let liveness = Arc::default();
        let (pool, credentials) = connect::Credentials::connect(client, arn, &liveness).await?;
        Ok(Self { pool, liveness, credentials: Some(credentials) })
    }

    /// An invocation begins: each connection idle since is pinged before its first statement in it
    /// (`connect::Liveness`).
    pub fn invocation_begins(&self) {
        self.liveness.invocation_begins();
    }

    /// After the server refused the credentials: reads the secret again, and connects with its new value from
    /// the next connection on. True when there was a new value to connect with.
    pub async fn renew_credentials(&self) -> std::result::Result<bool, Error> {
        match &self.credentials {
            Some(credentials) => credentials.renew(&self.pool).await,
            None => Ok(false),
        }
    }

    pub async fn migrate(&self) -> std::result::Result<(), Error> {
        Ok(MIGRATOR.run(&self.pool).await?)
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

mod app;
pub mod connect;
mod contacts;
mod fitness;
mod history;
mod ledger;
mod maintenance;
mod requests;
mod runs;
mod shop;
mod suppressions;
mod unsubscribes;
mod zone_moves;

pub use fitness::{DAY_ACTIVITY, USER_STATS_REFRESH};
