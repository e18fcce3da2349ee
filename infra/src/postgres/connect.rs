//! How the PostgreSQL store reaches its server: over TLS verified against the Amazon RDS certificate
//! authorities unless the URL says otherwise, with its credentials read from Secrets Manager at cold start and
//! read again when the server refuses them (a rotation heals without a deploy).

use std::{
    str::FromStr,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use serde::Deserialize;
use sqlx::{
    postgres::{PgConnectOptions, PgPoolOptions, PgSslMode},
    Connection, PgPool,
};

use crate::{config::Secret, Error};

/// The RDS certificate authorities (`infra/certs/rds-ca-bundle.pem` says where they come from), trusted when
/// TLS is verified and the URL names no `sslrootcert`.
const RDS_CA_BUNDLE: &[u8] = include_bytes!("../../certs/rds-ca-bundle.pem");

/// Set by the error mapping when the server refused a connection's credentials (SQLSTATE class 28), and taken
/// by `Credentials::renew`. One process serves one database, so one flag serves every pool.
static REFUSED: AtomicBool = AtomicBool::new(false);

/// Whether a SQLSTATE says the server refused the credentials: 28P01 (a wrong password) or 28000 (no
/// `pg_hba.conf` entry, a role that may not log in). Notes it for the next `Credentials::renew`.
pub(crate) fn credentials_refused(code: &str) -> bool {
    let refused = code.starts_with("28");
    if refused {
        REFUSED.store(true, Ordering::Relaxed);
    }
    refused
}

/// A connection's options from a `postgres://` URL, made safe for production:
/// - no `sslmode` in the URL and a server not on this host: `verify-full` (sqlx would `prefer`: TLS without
///   checking whom it talks to, or none at all);
/// - `verify-ca` or `verify-full` with no `sslrootcert` (nor `PGSSLROOTCERT`): the RDS certificate authorities;
/// - JIT off: small, index-driven queries cost more to compile than to run (on misestimated fresh tables).
pub fn options(url: &str) -> Result<PgConnectOptions, Error> {
    let parsed = PgConnectOptions::from_str(url)
        .map_err(|e| Error::Connect { target: "(DATABASE_URL)".into(), message: e.to_string() })?;
    let query = url.split_once('?').map_or("", |(_, query)| query);
    let named = |key: &str| query.split('&').any(|pair| pair.split('=').next() == Some(key));
    Ok(secure(parsed, named("sslmode"), named("sslrootcert") || std::env::var_os("PGSSLROOTCERT").is_some()))
}

fn secure(options: PgConnectOptions, ssl_mode_given: bool, root_given: bool) -> PgConnectOptions {
    let local = options.get_socket().is_some() || ["localhost", "127.0.0.1", "::1"].contains(&options.get_host());
    let options = if ssl_mode_given || local { options } else { options.ssl_mode(PgSslMode::VerifyFull) };
    let verified = matches!(options.get_ssl_mode(), PgSslMode::VerifyCa | PgSslMode::VerifyFull);
    if !verified && !local {
        tracing::warn!(
            host = options.get_host(),
            ssl_mode = ?options.get_ssl_mode(),
            "the database's TLS certificate is not verified: use sslmode=verify-full"
        );
    }
    let options =
        if verified && !root_given { options.ssl_root_cert_from_pem(RDS_CA_BUNDLE.to_vec()) } else { options };
    options.options([("jit", "off")])
}

/// The server as `host:port/database`, without credentials: what connection errors name.
pub fn target(options: &PgConnectOptions) -> String {
    format!(
        "{}:{}/{}",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or(options.get_username())
    )
}

/// Which pooled connections are pinged before a statement uses them. sqlx pings each one as it returns to the
/// pool and, by default, again before handing it out: a round trip before every statement, on its critical path
/// (a day of daily-summary ran 8–16 % faster without it, BENCHMARKS.md). Busy, a connection goes out again within
/// milliseconds of the ping that took it back; so only one that may have died since is pinged first, and
/// replaced if dead before a statement meets it: one idle for a second or more, or idle since before the
/// invocation began (a Lambda instance is frozen between invocations, and the database may have failed over or
/// ended its sessions meanwhile). One that dies after that fails its statement, as one dying during it does: a
/// retryable error.
#[derive(Debug)]
pub struct Liveness {
    base: Instant,
    /// When the current invocation began, in nanoseconds after `base`.
    invocation: AtomicU64,
}

impl Default for Liveness {
    fn default() -> Self {
        Self { base: Instant::now(), invocation: AtomicU64::new(0) }
    }
}

impl Liveness {
    /// Idle this long, a connection is pinged before its next statement whatever the invocation.
    const IDLE: Duration = Duration::from_secs(1);

    /// Every connection idle from now on is pinged before its first statement of the invocation.
    pub fn invocation_begins(&self) {
        self.invocation.store(self.nanos(self.base.elapsed()), Ordering::Relaxed);
    }

    fn worth_a_ping(&self, idle_for: Duration) -> bool {
        let idle_since = self.base.elapsed().saturating_sub(idle_for);
        idle_for >= Self::IDLE || self.nanos(idle_since) < self.invocation.load(Ordering::Relaxed)
    }

    fn nanos(&self, since_base: Duration) -> u64 {
        u64::try_from(since_base.as_nanos()).unwrap_or(u64::MAX)
    }
}

/// A small pool, connected now: an unreachable server, a refused certificate or refused credentials fail here,
/// naming the server (never the password).
pub async fn pool(options: PgConnectOptions, liveness: Arc<Liveness>) -> Result<PgPool, Error> {
    let target = target(&options);
    PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(5))
        .test_before_acquire(false)
        .before_acquire(move |conn, meta| {
            let ping = liveness.worth_a_ping(meta.idle_for);
            Box::pin(async move {
                if ping {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
        .connect_with(options)
        .await
        .map_err(|e| Error::Connect { target, message: connect_error(&e) })
}

/// A connection error in words an operator can act on: rustls's certificate errors hide under an I/O error.
fn connect_error(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(db) if db.code().is_some_and(|code| credentials_refused(&code)) => {
            format!("the server refused the credentials: {}", db.message())
        }
        sqlx::Error::Tls(tls) => format!("TLS: {tls}"),
        // rustls's refusal reaches sqlx as an I/O error.
        sqlx::Error::Io(io) if io.to_string().contains("peer certificate") => format!(
            "TLS: the server's certificate was refused ({io}): sslrootcert must name the CA that signed it (the RDS \
             authorities when it names none), and the URL's host must be a name the certificate holds"
        ),
        other => other.to_string(),
    }
}

/// Where the credentials come from when Secrets Manager holds them (`DATABASE_URL_SECRET_ARN`): the secret's
/// value is a `postgres://` URL, or the JSON RDS writes for a managed or rotated secret.
pub struct Credentials {
    client: aws_sdk_secretsmanager::Client,
    arn: String,
    /// The value the pool connects with now, to tell a rotated secret from the one that was refused.
    current: tokio::sync::Mutex<Secret>,
}

/// The JSON form: what RDS's managed master secret and the rotation functions' templates hold.
#[derive(Deserialize)]
struct RdsSecret {
    username: String,
    password: String,
    host: String,
    #[serde(default)]
    port: Option<u16>,
    #[serde(default)]
    dbname: Option<String>,
}

impl Credentials {
    /// Reads the secret and connects with it. Refused credentials are read once more before giving up: the
    /// secret may have been read between a rotation's new password and its becoming current.
    pub async fn connect(
        client: aws_sdk_secretsmanager::Client,
        arn: String,
        liveness: &Arc<Liveness>,
    ) -> Result<(PgPool, Self), Error> {
        let value = crate::secrets::read(&client, &arn).await?;
        let credentials = Self { client, arn, current: tokio::sync::Mutex::new(value) };
        let first = credentials.options().await?;
        match pool(first, liveness.clone()).await {
            Err(Error::Connect { .. }) if REFUSED.swap(false, Ordering::Relaxed) => {
                tracing::warn!(secret = %credentials.arn, "the database refused the secret's credentials: reading it again");
                credentials.reread().await?;
                let pool = pool(credentials.options().await?, liveness.clone()).await?;
                Ok((pool, credentials))
            }
            connected => Ok((connected?, credentials)),
        }
    }

    /// After the server refused the credentials since the last call: reads the secret again and, when it has
    /// changed, has `pool` connect with the new value from its next connection on. True when it changed.
    pub async fn renew(&self, pool: &PgPool) -> Result<bool, Error> {
        if !REFUSED.swap(false, Ordering::Relaxed) {
            return Ok(false);
        }
        if !self.reread().await? {
            tracing::error!(secret = %self.arn, "the database refused the credentials, and the secret has not changed");
            return Ok(false);
        }
        pool.set_connect_options(self.options().await?);
        tracing::info!(secret = %self.arn, "the database refused the credentials: connecting with the secret's new value");
        Ok(true)
    }

    /// Reads the secret into `current`; true when its value changed.
    async fn reread(&self) -> Result<bool, Error> {
        let value = crate::secrets::read(&self.client, &self.arn).await?;
        let mut current = self.current.lock().await;
        let changed = value.expose() != current.expose();
        *current = value;
        Ok(changed)
    }

    async fn options(&self) -> Result<PgConnectOptions, Error> {
        let current = self.current.lock().await;
        from_secret(current.expose())
            .map_err(|reason| Error::Config(format!("the database secret {} {reason}", self.arn)))
    }
}

/// The options a secret's value gives: a URL as `options` reads it, or RDS's JSON, always with verified TLS.
/// The error never quotes the value.
fn from_secret(value: &str) -> Result<PgConnectOptions, String> {
    let value = value.trim();
    if value.starts_with("postgres://") || value.starts_with("postgresql://") {
        return options(value).map_err(|_| "holds a URL that does not parse".into());
    }
    let rds: RdsSecret = serde_json::from_str(value).map_err(|_| {
        "holds neither a postgres:// URL nor JSON with username, password and host (and port, dbname)".to_string()
    })?;
    let options = PgConnectOptions::new_without_pgpass()
        .host(&rds.host)
        .port(rds.port.unwrap_or(5432))
        .username(&rds.username)
        .password(&rds.password)
        .database(rds.dbname.as_deref().unwrap_or("postgres"));
    Ok(secure(options, false, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_is_pinged_when_idle_a_second_or_since_before_the_invocation() {
        let liveness = Liveness::default();
        assert!(!liveness.worth_a_ping(Duration::ZERO), "in use a moment ago");
        assert!(liveness.worth_a_ping(Liveness::IDLE));
        liveness.invocation_begins();
        assert!(liveness.worth_a_ping(liveness.base.elapsed()), "idle since before the invocation");
        assert!(!liveness.worth_a_ping(Duration::ZERO), "used in this invocation");
    }

    #[test]
    fn a_remote_server_is_verified_unless_the_url_says_otherwise() {
        let remote = options("postgres://u:p@db.example.com/app").unwrap();
        assert!(matches!(remote.get_ssl_mode(), PgSslMode::VerifyFull));
        let asked = options("postgres://u:p@db.example.com/app?sslmode=require").unwrap();
        assert!(matches!(asked.get_ssl_mode(), PgSslMode::Require));
        let local = options("postgres://u@127.0.0.1:5432/app").unwrap();
        assert!(matches!(local.get_ssl_mode(), PgSslMode::Prefer));
    }

    #[test]
    fn rds_json_secrets_connect_with_verified_tls() {
        let json = r#"{"engine":"postgres","username":"jobs","password":"p@ss/word","host":"db.rds.amazonaws.com","port":5433,"dbname":"app"}"#;
        let options = from_secret(json).unwrap();
        assert_eq!(options.get_host(), "db.rds.amazonaws.com");
        assert_eq!(options.get_port(), 5433);
        assert_eq!(options.get_database(), Some("app"));
        assert_eq!(options.get_username(), "jobs");
        assert!(matches!(options.get_ssl_mode(), PgSslMode::VerifyFull));
    }

    #[test]
    fn a_secret_of_another_shape_is_refused_without_quoting_it() {
        for value in ["hunter2", r#"{"password":"hunter2"}"#, "postgres://jobs:hunter2@[bad"] {
            let reason = from_secret(value).unwrap_err();
            assert!(!reason.contains("hunter2"), "{reason}");
        }
    }

    #[test]
    fn the_bundled_authorities_parse() {
        let text = std::str::from_utf8(RDS_CA_BUNDLE).unwrap();
        assert!(text.matches("-----BEGIN CERTIFICATE-----").count() > 50);
    }
}
