use async_trait::async_trait;
use time::OffsetDateTime;

use super::audit::record_in;
use super::{NewAuditEvent, OutboxRepository, SqlError};
use crate::domain::Job;

pub(super) fn encode_job(job: &Job) -> Result<String, SqlError> {
    serde_json::to_string(job).map_err(|error| SqlError::Other(sqlx::Error::Encode(error.into())))
}

/// Adds `$job` (a `&Job`) to the outbox through `$executor`: the
/// transaction of the change that causes it, or the pool.
macro_rules! insert_job_in {
    ($executor:expr, $job:expr, $now:expr) => {{
        let job: &$crate::domain::Job = $job;
        sqlx::query(
            "INSERT INTO job_outbox (id, kind, payload, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&job.id)
        .bind(job.kind())
        .bind($crate::repositories::sql::outbox::encode_job(job)?)
        .bind($now)
        .execute($executor)
        .await
    }};
}
pub(super) use insert_job_in;

fn decode_job(payload: &str) -> Result<Job, SqlError> {
    serde_json::from_str(payload)
        .map_err(|error| SqlError::Other(sqlx::Error::Decode(error.into())))
}

macro_rules! sql_outbox_repository {
    ($name:ident, $database:ty) => {
        pool_repository!($name, $database);

        #[async_trait]
        impl OutboxRepository for $name {
            async fn due(
                &self,
                relayed_before: OffsetDateTime,
                limit: u32,
            ) -> Result<Vec<Job>, SqlError> {
                let payloads: Vec<String> = sqlx::query_scalar(
                    "SELECT payload FROM job_outbox WHERE relayed_at IS NULL OR relayed_at < $1 \
                     ORDER BY created_at, id LIMIT $2",
                )
                .bind(relayed_before)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                payloads.iter().map(|payload| decode_job(payload)).collect()
            }

            async fn add(&self, job: &Job, now: OffsetDateTime) -> Result<(), SqlError> {
                insert_job_in!(&self.pool, job, now)?;
                Ok(())
            }

            async fn add_recorded(
                &self,
                job: &Job,
                now: OffsetDateTime,
                event: &NewAuditEvent,
            ) -> Result<(), SqlError> {
                let mut transaction = self.pool.begin().await?;
                insert_job_in!(&mut *transaction, job, now)?;
                record_in!(&mut *transaction, event)?;
                transaction.commit().await?;
                Ok(())
            }

            async fn mark_relayed(&self, id: &str, now: OffsetDateTime) -> Result<(), SqlError> {
                sqlx::query("UPDATE job_outbox SET relayed_at = $2 WHERE id = $1")
                    .bind(id)
                    .bind(now)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn remove(&self, id: &str) -> Result<(), SqlError> {
                sqlx::query("DELETE FROM job_outbox WHERE id = $1")
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn count(&self) -> Result<u64, SqlError> {
                let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM job_outbox")
                    .fetch_one(&self.pool)
                    .await?;
                Ok(count.max(0) as u64)
            }
        }
    };
}

sql_outbox_repository!(SqliteOutboxRepository, sqlx::Sqlite);
sql_outbox_repository!(PgOutboxRepository, sqlx::Postgres);
