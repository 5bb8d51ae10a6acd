use async_trait::async_trait;
use time::OffsetDateTime;

use super::audit::record_in;
use super::{NewAuditEvent, OutboxRepository, SqlError};
use crate::domain::Job;

pub(super) fn encode_job(job: &Job) -> Result<String, SqlError> {
    serde_json::to_string(job).map_err(|error| SqlError::Other(sqlx::Error::Encode(error.into())))
}

/// Adds a job to the outbox; run inside the transaction of the change that
/// causes it, or on its own.
pub(super) const INSERT_JOB: &str =
    "INSERT INTO job_outbox (id, kind, payload, created_at) VALUES ($1, $2, $3, $4)";

fn decode_job(payload: &str) -> Result<Job, SqlError> {
    serde_json::from_str(payload)
        .map_err(|error| SqlError::Other(sqlx::Error::Decode(error.into())))
}

macro_rules! sql_outbox_repository {
    ($name:ident, $database:ty) => {
        pub struct $name {
            pool: sqlx::Pool<$database>,
        }

        impl $name {
            pub fn new(pool: sqlx::Pool<$database>) -> Self {
                Self { pool }
            }
        }

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
                sqlx::query(INSERT_JOB)
                    .bind(&job.id)
                    .bind(job.kind())
                    .bind(encode_job(job)?)
                    .bind(now)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn add_recorded(
                &self,
                job: &Job,
                now: OffsetDateTime,
                event: &NewAuditEvent,
            ) -> Result<(), SqlError> {
                let mut transaction = self.pool.begin().await?;
                sqlx::query(INSERT_JOB)
                    .bind(&job.id)
                    .bind(job.kind())
                    .bind(encode_job(job)?)
                    .bind(now)
                    .execute(&mut *transaction)
                    .await?;
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
