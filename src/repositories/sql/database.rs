use std::str::FromStr;
use std::sync::Arc;

use anyhow::Context;
use secrecy::ExposeSecret;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, PgPool, SqlitePool};

use super::account_tokens::{PgAccountTokenRepository, SqliteAccountTokenRepository};
use super::audit::{PgAuditRepository, SqliteAuditRepository};
use super::outbox::{PgOutboxRepository, SqliteOutboxRepository};
use super::sessions::{PgSessionRepository, SqliteSessionRepository};
use super::users::{PgUserRepository, SqliteUserRepository};
use super::{
    AccountTokenRepository, AuditRepository, OutboxRepository, SessionRepository, SqlError,
    UserRepository,
};
use crate::config::{DatabaseSettings, redact_url};

/// The pool of whichever backend `database.url` names.
#[derive(Clone)]
pub enum Database {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A negative `cache_size` is in KiB, not pages.
const SQLITE_CACHE_KIB: &str = "-512";

impl Database {
    /// Opens the pool. The first connection is made here, so a bad
    /// URL or an unreachable server fails start-up with a clear message.
    pub async fn connect(settings: &DatabaseSettings) -> anyhow::Result<Self> {
        let url = settings.url.expose_secret();
        let shown = redact_url(url);
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .with_context(|| format!("invalid SQLite URL {shown}"))?
                .create_if_missing(true)
                // WAL lets readers run while a write is in progress.
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(settings.acquire_timeout())
                .foreign_keys(true)
                // Each connection has a private page cache (2 MiB by default):
                // ten connections held a copy of the hot pages each, 12 MiB
                // of peak RSS. The OS page cache is shared, so a small private
                // one costs reads little (bench/results.md, workload b).
                .pragma("cache_size", SQLITE_CACHE_KIB);
            create_parent_dir(options.get_filename())?;
            let pool = SqlitePoolOptions::new()
                .max_connections(settings.max_connections)
                .acquire_timeout(settings.acquire_timeout())
                .connect_with(options)
                .await
                .with_context(|| format!("cannot open the SQLite database {shown}"))?;
            Ok(Database::Sqlite(pool))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            // A statement stuck behind a lock gives up, like a pool checkout
            // does, rather than holding a request (and a connection) forever.
            let options = PgConnectOptions::from_str(url)
                .with_context(|| format!("invalid PostgreSQL URL {shown}"))?
                .options([(
                    "statement_timeout",
                    format!("{}ms", settings.statement_timeout_ms),
                )]);
            // One connection first, on its own: the pool retries until its
            // timeout and then reports only "pool timed out", hiding the
            // cause (connection refused, a wrong password, no such database).
            match tokio::time::timeout(settings.acquire_timeout(), options.connect()).await {
                Ok(Ok(connection)) => connection.close().await.unwrap_or(()),
                Ok(Err(error)) => {
                    anyhow::bail!(
                        "cannot connect to PostgreSQL at {shown}: {}",
                        explain(&error)
                    )
                }
                Err(_) => anyhow::bail!(
                    "PostgreSQL at {shown} did not answer within {} ms (timeout)",
                    settings.acquire_timeout_ms
                ),
            }
            let pool = PgPoolOptions::new()
                .max_connections(settings.max_connections)
                .acquire_timeout(settings.acquire_timeout())
                .connect_with(options)
                .await
                .with_context(|| format!("cannot connect to PostgreSQL at {shown}"))?;
            Ok(Database::Postgres(pool))
        } else {
            anyhow::bail!("database.url must start with sqlite:// or postgres://, got {shown}")
        }
    }

    /// Applies the migrations embedded in the binary for this backend.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        match self {
            Database::Sqlite(pool) => sqlx::migrate!("migrations/sqlite").run(pool).await,
            Database::Postgres(pool) => sqlx::migrate!("migrations/postgres").run(pool).await,
        }
        .context("applying database migrations failed")
    }

    pub fn users(&self) -> Arc<dyn UserRepository> {
        match self {
            Database::Sqlite(pool) => Arc::new(SqliteUserRepository::new(pool.clone())),
            Database::Postgres(pool) => Arc::new(PgUserRepository::new(pool.clone())),
        }
    }

    pub fn sessions(&self) -> Arc<dyn SessionRepository> {
        match self {
            Database::Sqlite(pool) => Arc::new(SqliteSessionRepository::new(pool.clone())),
            Database::Postgres(pool) => Arc::new(PgSessionRepository::new(pool.clone())),
        }
    }

    pub fn audit(&self) -> Arc<dyn AuditRepository> {
        match self {
            Database::Sqlite(pool) => Arc::new(SqliteAuditRepository::new(pool.clone())),
            Database::Postgres(pool) => Arc::new(PgAuditRepository::new(pool.clone())),
        }
    }

    pub fn outbox(&self) -> Arc<dyn OutboxRepository> {
        match self {
            Database::Sqlite(pool) => Arc::new(SqliteOutboxRepository::new(pool.clone())),
            Database::Postgres(pool) => Arc::new(PgOutboxRepository::new(pool.clone())),
        }
    }

    pub fn account_tokens(&self) -> Arc<dyn AccountTokenRepository> {
        match self {
            Database::Sqlite(pool) => Arc::new(SqliteAccountTokenRepository::new(pool.clone())),
            Database::Postgres(pool) => Arc::new(PgAccountTokenRepository::new(pool.clone())),
        }
    }

    pub async fn ping(&self) -> Result<(), SqlError> {
        match self {
            Database::Sqlite(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop),
            Database::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop),
        }?;
        Ok(())
    }

    /// (connections open, of them idle)
    pub fn pool_status(&self) -> (u32, usize) {
        match self {
            Database::Sqlite(pool) => (pool.size(), pool.num_idle()),
            Database::Postgres(pool) => (pool.size(), pool.num_idle()),
        }
    }

    pub async fn close(&self) {
        match self {
            Database::Sqlite(pool) => pool.close().await,
            Database::Postgres(pool) => pool.close().await,
        }
    }
}

/// A connection failure in the operator's terms, with the real cause.
fn explain(error: &sqlx::Error) -> String {
    match error {
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            "connection refused: nothing listens on that host and port \
             (is PostgreSQL running there, and is the port right?)"
                .into()
        }
        // rustls reports an untrusted or invalid certificate this way.
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::InvalidData => {
            format!("TLS failed: {io}")
        }
        sqlx::Error::Io(io) => format!("network error: {io}"),
        sqlx::Error::Tls(tls) => format!("TLS failed: {tls}"),
        sqlx::Error::Database(database) => match database.code().as_deref() {
            Some("28P01") => format!("password authentication failed ({})", database.message()),
            Some("3D000") => format!("the database does not exist ({})", database.message()),
            Some("28000") => format!("the server refused this login ({})", database.message()),
            _ => database.message().to_string(),
        },
        other => other.to_string(),
    }
}

fn create_parent_dir(file: &std::path::Path) -> anyhow::Result<()> {
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && file.to_str() != Some(":memory:") => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the database folder {}", dir.display()))
        }
        _ => Ok(()),
    }
}
