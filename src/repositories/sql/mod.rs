//! The SQL side: connection, migrations and the user repository, for SQLite
//! and PostgreSQL.

/// A repository type holding one pool of `$database`: each repository's
/// macro compiles its one body for SQLite and for PostgreSQL with it.
macro_rules! pool_repository {
    ($name:ident, $database:ty) => {
        pub struct $name {
            pool: sqlx::Pool<$database>,
        }

        impl $name {
            pub fn new(pool: sqlx::Pool<$database>) -> Self {
                Self { pool }
            }
        }
    };
}

mod account_tokens;
mod audit;
mod database;
mod outbox;
mod sessions;
mod users;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::domain::{Job, Role, SessionId, User, UserId};

pub use account_tokens::{AccountTokenRepository, NewToken, TokenOwner, TokenRecipient};
pub use audit::{AuditFilter, AuditRepository, NewAuditEvent};
pub use database::Database;
pub use sessions::{NewSession, SessionRepository, SessionState};

#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// A unique index rejected the write; names the column.
    #[error("unique constraint on {0} violated")]
    UniqueViolation(&'static str),
    #[error("database unavailable")]
    Unavailable(#[source] sqlx::Error),
    #[error("database error")]
    Other(#[source] sqlx::Error),
}

impl From<sqlx::Error> for SqlError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                let what = db.constraint().unwrap_or(db.message()).to_string();
                if what.contains("email") {
                    SqlError::UniqueViolation("email")
                } else {
                    SqlError::UniqueViolation("username")
                }
            }
            sqlx::Error::Database(db) if is_transient(db.code().as_deref()) => {
                SqlError::Unavailable(error)
            }
            // A connection the network cut mid-handshake reads as a
            // protocol error ("unexpected response from SSLRequest"): the
            // database is out of reach, as with an I/O error.
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed => SqlError::Unavailable(error),
            _ => SqlError::Other(error),
        }
    }
}

/// Errors that say "try again later" rather than "this request is wrong":
/// SQLite busy/locked; PostgreSQL connection trouble, lack of resources,
/// shutdown, lock timeouts and query cancellation.
fn is_transient(code: Option<&str>) -> bool {
    match code {
        Some("5" | "6" | "55P03" | "57014") => true,
        Some(code) => code.starts_with("08") || code.starts_with("53") || code.starts_with("57P"),
        None => false,
    }
}

pub struct NewUser<'a> {
    pub username: &'a str,
    pub email: &'a str,
    pub password_hash: &'a str,
    pub role: Role,
    pub now: OffsetDateTime,
}

/// Columns to change; `None` leaves a column as it is.
#[derive(Default)]
pub struct UserChanges<'a> {
    /// A new address is unverified until its link is followed.
    pub username: Option<&'a str>,
    pub email: Option<&'a str>,
    pub role: Option<Role>,
    /// Jobs the change causes, committed with it (mails after an address change).
    pub jobs: &'a [Job],
    pub disabled: Option<bool>,
}

/// Which users a listing returns; `None` fields do not filter.
#[derive(Default)]
pub struct UserFilter<'a> {
    /// Case-insensitive substring of the username or e-mail address.
    pub text: Option<&'a str>,
    pub role: Option<Role>,
    pub disabled: Option<bool>,
}

/// The outcome of a write guarded by a fencing token.
#[derive(Debug)]
pub enum Fenced<T> {
    Applied(T),
    /// A write with a newer token came first: this one was refused.
    Stale,
    Missing,
}

/// How a login names the account.
pub enum LoginName<'a> {
    Username(&'a str),
    Email(&'a str),
}

/// What a password check needs; kept apart from `User` so the hash never
/// travels further than the auth service.
pub struct Credentials {
    pub id: UserId,
    pub role: Role,
    pub password_hash: String,
    pub email_verified: bool,
    pub disabled: bool,
}

/// What a password change or reset committed.
#[derive(Debug)]
pub struct PasswordSet {
    pub user: UserId,
    /// The user row's new version (cached copies older than it are stale).
    pub version: i64,
    /// The sessions it ended, to be ended in Redis too.
    pub ended: Vec<SessionId>,
}

#[async_trait]
pub trait UserRepository: Send + Sync {
    /// Inserts the user and, in the same transaction, the job it causes and
    /// `event` (recorded with the new user as its subject).
    async fn insert(
        &self,
        new_user: NewUser<'_>,
        job: &Job,
        event: &NewAuditEvent,
    ) -> Result<User, SqlError>;
    async fn find(&self, id: UserId) -> Result<Option<User>, SqlError>;
    async fn find_credentials(&self, login: LoginName<'_>)
    -> Result<Option<Credentials>, SqlError>;
    async fn find_credentials_by_id(&self, id: UserId) -> Result<Option<Credentials>, SqlError>;
    /// Applies the changes and raises the version, if `fence` is newer than
    /// the fencing token of the last such write; records `events` with it.
    /// A changed e-mail address is unverified.
    async fn update(
        &self,
        id: UserId,
        changes: UserChanges<'_>,
        now: OffsetDateTime,
        fence: i64,
        events: &[NewAuditEvent],
    ) -> Result<Fenced<User>, SqlError>;
    /// Replaces the password hash and ends every session of the user, in one
    /// transaction with `event`; `None` when there is no such user.
    async fn set_password_hash(
        &self,
        id: UserId,
        password_hash: &str,
        now: OffsetDateTime,
        event: &NewAuditEvent,
    ) -> Result<Option<PasswordSet>, SqlError>;
    /// Deletes the user, recording `event`; false when there was none.
    async fn delete(&self, id: UserId, event: &NewAuditEvent) -> Result<bool, SqlError>;
    /// Users with an id above `after` that pass `filter`, in id order.
    async fn list(
        &self,
        after: Option<UserId>,
        limit: u32,
        filter: &UserFilter<'_>,
    ) -> Result<Vec<User>, SqlError>;
}

/// Jobs committed in SQL, kept until they are done.
#[async_trait]
pub trait OutboxRepository: Send + Sync {
    /// The oldest jobs never handed to the queue, or handed over before
    /// `relayed_before` and still not done.
    async fn due(&self, relayed_before: OffsetDateTime, limit: u32) -> Result<Vec<Job>, SqlError>;
    /// Commits a job on its own (one not tied to another change).
    async fn add(&self, job: &Job, now: OffsetDateTime) -> Result<(), SqlError>;
    /// Commits a job together with the audit event of the request for it.
    async fn add_recorded(
        &self,
        job: &Job,
        now: OffsetDateTime,
        event: &NewAuditEvent,
    ) -> Result<(), SqlError>;
    async fn mark_relayed(&self, id: &str, now: OffsetDateTime) -> Result<(), SqlError>;
    /// Removes a job that is done (or given up on).
    async fn remove(&self, id: &str) -> Result<(), SqlError>;
    async fn count(&self) -> Result<u64, SqlError>;
}
