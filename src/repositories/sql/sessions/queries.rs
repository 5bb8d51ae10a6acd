//! The SQL behind `SessionRepository`: the rows it reads and one macro
//! body compiled for SQLite and for PostgreSQL.

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{END_ALL, NewSession, SessionRepository, SessionState, session_ids};
use crate::domain::{SessionId, SessionRecord, UserId};
use crate::repositories::sql::audit::record_in;
use crate::repositories::sql::users::parse_role;
use crate::repositories::sql::{NewAuditEvent, SqlError};

#[derive(sqlx::FromRow)]
struct StateRow {
    user_id: i64,
    role: String,
    refresh_hash: String,
    previous_refresh_hash: Option<String>,
    previous_spent_at_ms: Option<i64>,
    expires_at_ms: i64,
    ended_at_ms: Option<i64>,
    disabled: bool,
}

#[derive(sqlx::FromRow)]
struct RecordRow {
    id: String,
    created_at: OffsetDateTime,
    last_used_at: OffsetDateTime,
    user_agent: Option<String>,
    ip: Option<String>,
}

fn state(row: StateRow) -> Result<SessionState, SqlError> {
    Ok(SessionState {
        user: UserId(row.user_id),
        role: parse_role(&row.role)?,
        refresh_hash: row.refresh_hash,
        previous_refresh_hash: row.previous_refresh_hash,
        previous_spent_at_ms: row.previous_spent_at_ms,
        expires_at_ms: row.expires_at_ms,
        ended: row.ended_at_ms.is_some() || row.disabled,
    })
}

fn record(row: RecordRow) -> SessionRecord {
    SessionRecord {
        id: SessionId::from_stored(row.id),
        created_at: row.created_at,
        last_used_at: row.last_used_at,
        user_agent: row.user_agent,
        ip: row.ip,
    }
}

macro_rules! sql_session_repository {
    ($name:ident, $database:ty) => {
        pool_repository!($name, $database);

        #[async_trait]
        impl SessionRepository for $name {
            async fn start(
                &self,
                session: NewSession<'_>,
                password_hash: &str,
                keep_others: u32,
                event: &NewAuditEvent,
            ) -> Result<Option<Vec<SessionId>>, SqlError> {
                let mut transaction = self.pool.begin().await?;
                // A write to the user's row, changing nothing: it holds the
                // row (PostgreSQL) or the database (SQLite) until the commit,
                // so two logins of one user are applied one after the other,
                // and it checks the password is still the one verified.
                let holds = sqlx::query(
                    "UPDATE users SET fence = fence \
                     WHERE id = $1 AND password_hash = $2 AND disabled = FALSE",
                )
                .bind(session.user.0)
                .bind(password_hash)
                .execute(&mut *transaction)
                .await?;
                if holds.rows_affected() != 1 {
                    return Ok(None);
                }
                sqlx::query(
                    "INSERT INTO sessions (id, user_id, refresh_hash, created_at, last_used_at, \
                     expires_at_ms, user_agent, ip) VALUES ($1, $2, $3, $4, $4, $5, $6, $7)",
                )
                .bind(session.id.as_str())
                .bind(session.user.0)
                .bind(session.refresh_hash)
                .bind(session.now)
                .bind(session.expires_at_ms)
                .bind(session.user_agent)
                .bind(session.ip)
                .execute(&mut *transaction)
                .await?;
                let now_ms = (session.now.unix_timestamp_nanos() / 1_000_000) as i64;
                let ended: Vec<String> = sqlx::query_scalar(
                    "UPDATE sessions SET ended_at_ms = $3 \
                     WHERE user_id = $1 AND id <> $2 AND ended_at_ms IS NULL AND id NOT IN ( \
                       SELECT id FROM sessions WHERE user_id = $1 AND id <> $2 \
                       AND ended_at_ms IS NULL AND expires_at_ms > $3 \
                       ORDER BY created_at DESC, id DESC LIMIT $4) \
                     RETURNING id",
                )
                .bind(session.user.0)
                .bind(session.id.as_str())
                .bind(now_ms)
                .bind(i64::from(keep_others))
                .fetch_all(&mut *transaction)
                .await?;
                record_in!(&mut *transaction, event)?;
                transaction.commit().await?;
                Ok(Some(ended.into_iter().map(SessionId::from_stored).collect()))
            }

            async fn find(&self, id: &SessionId) -> Result<Option<SessionState>, SqlError> {
                sqlx::query_as::<_, StateRow>(
                    "SELECT s.user_id, u.role, s.refresh_hash, s.previous_refresh_hash, \
                     s.previous_spent_at_ms, s.expires_at_ms, s.ended_at_ms, u.disabled \
                     FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1",
                )
                .bind(id.as_str())
                .fetch_optional(&self.pool)
                .await?
                .map(state)
                .transpose()
            }

            async fn rotate(
                &self,
                id: &SessionId,
                presented_hash: &str,
                new_hash: &str,
                now: OffsetDateTime,
            ) -> Result<bool, SqlError> {
                let now_ms = (now.unix_timestamp_nanos() / 1_000_000) as i64;
                let result = sqlx::query(
                    "UPDATE sessions SET previous_refresh_hash = refresh_hash, \
                     refresh_hash = $3, previous_spent_at_ms = $4, last_used_at = $5 \
                     WHERE id = $1 AND refresh_hash = $2 AND ended_at_ms IS NULL \
                     AND expires_at_ms > $4",
                )
                .bind(id.as_str())
                .bind(presented_hash)
                .bind(new_hash)
                .bind(now_ms)
                .bind(now)
                .execute(&self.pool)
                .await?;
                Ok(result.rows_affected() == 1)
            }

            async fn touch(&self, id: &SessionId, now: OffsetDateTime) -> Result<(), SqlError> {
                sqlx::query("UPDATE sessions SET last_used_at = $2 WHERE id = $1")
                    .bind(id.as_str())
                    .bind(now)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn end(
                &self,
                id: &SessionId,
                user: UserId,
                now_ms: i64,
                event: Option<&NewAuditEvent>,
            ) -> Result<bool, SqlError> {
                let mut transaction = self.pool.begin().await?;
                let result = sqlx::query(
                    "UPDATE sessions SET ended_at_ms = $3 \
                     WHERE id = $1 AND user_id = $2 AND ended_at_ms IS NULL AND expires_at_ms > $3",
                )
                .bind(id.as_str())
                .bind(user.0)
                .bind(now_ms)
                .execute(&mut *transaction)
                .await?;
                if result.rows_affected() != 1 {
                    return Ok(false);
                }
                if let Some(event) = event {
                    record_in!(&mut *transaction, event)?;
                }
                transaction.commit().await?;
                Ok(true)
            }

            async fn end_all(
                &self,
                user: UserId,
                now_ms: i64,
                event: Option<&NewAuditEvent>,
            ) -> Result<Vec<SessionId>, SqlError> {
                let mut transaction = self.pool.begin().await?;
                let ended: Vec<String> = sqlx::query_scalar(END_ALL)
                .bind(user.0)
                .bind(now_ms)
                .fetch_all(&mut *transaction)
                .await?;
                if let Some(event) = event {
                    record_in!(&mut *transaction, event)?;
                }
                transaction.commit().await?;
                Ok(session_ids(ended))
            }

            async fn list_live(
                &self,
                user: UserId,
                now_ms: i64,
            ) -> Result<Vec<SessionRecord>, SqlError> {
                let rows = sqlx::query_as::<_, RecordRow>(
                    "SELECT id, created_at, last_used_at, user_agent, ip FROM sessions \
                     WHERE user_id = $1 AND ended_at_ms IS NULL AND expires_at_ms > $2 \
                     ORDER BY created_at DESC, id DESC",
                )
                .bind(user.0)
                .bind(now_ms)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(record).collect())
            }

            async fn prune(&self, before_ms: i64) -> Result<u64, SqlError> {
                let result = sqlx::query(
                    "DELETE FROM sessions WHERE expires_at_ms < $1 OR ended_at_ms < $1",
                )
                .bind(before_ms)
                .execute(&self.pool)
                .await?;
                Ok(result.rows_affected())
            }
        }
    };
}

sql_session_repository!(SqliteSessionRepository, sqlx::Sqlite);
sql_session_repository!(PgSessionRepository, sqlx::Postgres);
