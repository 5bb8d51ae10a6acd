//! The audit log: events are inserted by the repositories that make the
//! change they record, inside the same transaction (`record_in!`), or on
//! their own when nothing else changes (a failed login, an eviction).

use async_trait::async_trait;
use time::OffsetDateTime;

use super::SqlError;
use crate::domain::{AuditEvent, UserId};

/// An event to record. Never carries a password or a token.
#[derive(Debug, Clone)]
pub struct NewAuditEvent {
    pub at: OffsetDateTime,
    pub action: &'static str,
    pub actor: Option<UserId>,
    pub subject: Option<UserId>,
    pub ip: Option<String>,
    pub request_id: Option<String>,
    /// A JSON object.
    pub details: String,
}

impl NewAuditEvent {
    /// The same event, caused by `user` and about them (a user acting on
    /// their own account, known only once a token names it).
    pub fn by_and_about(&self, user: UserId) -> Self {
        Self {
            actor: Some(user),
            subject: Some(user),
            ..self.clone()
        }
    }
}

/// Which events a listing returns, newest first.
#[derive(Debug, Default)]
pub struct AuditFilter<'a> {
    pub subject: Option<UserId>,
    pub actor: Option<UserId>,
    pub action: Option<&'a str>,
    /// Only events older than this id (the previous page's last).
    pub before: Option<i64>,
    pub limit: u32,
}

#[async_trait]
pub trait AuditRepository: Send + Sync {
    /// Records an event that goes with no other change.
    async fn record(&self, event: &NewAuditEvent) -> Result<(), SqlError>;
    async fn list(&self, filter: &AuditFilter<'_>) -> Result<Vec<AuditEvent>, SqlError>;
    /// Deletes events recorded before `before`.
    async fn prune(&self, before: OffsetDateTime) -> Result<u64, SqlError>;
}

/// Inserts `$event` (a `&NewAuditEvent`) through `$executor`, e.g. a
/// transaction of the change it records.
macro_rules! record_in {
    ($executor:expr, $event:expr) => {{
        let event: &$crate::repositories::sql::NewAuditEvent = $event;
        sqlx::query(
            "INSERT INTO audit_events (at, action, actor_id, subject_id, ip, request_id, details) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(event.at)
        .bind(event.action)
        .bind(event.actor.map(|id| id.0))
        .bind(event.subject.map(|id| id.0))
        .bind(event.ip.as_deref())
        .bind(event.request_id.as_deref())
        .bind(event.details.as_str())
        .execute($executor)
        .await
    }};
}
pub(super) use record_in;

#[derive(sqlx::FromRow)]
struct EventRow {
    id: i64,
    at: OffsetDateTime,
    action: String,
    actor_id: Option<i64>,
    subject_id: Option<i64>,
    ip: Option<String>,
    request_id: Option<String>,
    details: String,
}

impl From<EventRow> for AuditEvent {
    fn from(row: EventRow) -> Self {
        Self {
            id: row.id,
            at: row.at,
            action: row.action,
            actor: row.actor_id.map(UserId),
            subject: row.subject_id.map(UserId),
            ip: row.ip,
            request_id: row.request_id,
            details: row.details,
        }
    }
}

macro_rules! sql_audit_repository {
    ($name:ident, $database:ty) => {
        pool_repository!($name, $database);

        #[async_trait]
        impl AuditRepository for $name {
            async fn record(&self, event: &NewAuditEvent) -> Result<(), SqlError> {
                record_in!(&self.pool, event)?;
                Ok(())
            }

            async fn list(&self, filter: &AuditFilter<'_>) -> Result<Vec<AuditEvent>, SqlError> {
                // Only the filters given become conditions (as for users).
                let mut sql = String::from(
                    "SELECT id, at, action, actor_id, subject_id, ip, request_id, details \
                     FROM audit_events WHERE id < $1",
                );
                let mut next = 2;
                for (present, column) in [
                    (filter.subject.is_some(), "subject_id"),
                    (filter.actor.is_some(), "actor_id"),
                    (filter.action.is_some(), "action"),
                ] {
                    if present {
                        sql.push_str(&format!(" AND {column} = ${next}"));
                        next += 1;
                    }
                }
                sql.push_str(&format!(" ORDER BY id DESC LIMIT ${next}"));
                let mut query =
                    sqlx::query_as::<_, EventRow>(&sql).bind(filter.before.unwrap_or(i64::MAX));
                if let Some(subject) = filter.subject {
                    query = query.bind(subject.0);
                }
                if let Some(actor) = filter.actor {
                    query = query.bind(actor.0);
                }
                if let Some(action) = filter.action {
                    query = query.bind(action);
                }
                let rows = query
                    .bind(i64::from(filter.limit))
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows.into_iter().map(AuditEvent::from).collect())
            }

            async fn prune(&self, before: OffsetDateTime) -> Result<u64, SqlError> {
                let result = sqlx::query("DELETE FROM audit_events WHERE at < $1")
                    .bind(before)
                    .execute(&self.pool)
                    .await?;
                Ok(result.rows_affected())
            }
        }
    };
}

sql_audit_repository!(SqliteAuditRepository, sqlx::Sqlite);
sql_audit_repository!(PgAuditRepository, sqlx::Postgres);
