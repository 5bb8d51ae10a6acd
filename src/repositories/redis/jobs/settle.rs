//! How a delivery ends: done, discarded, retried later or buried; each
//! atomically with taking the entry off the stream.

use std::time::Duration;

use super::{Delivery, GROUP, JobQueue};
use crate::domain::Job;
use crate::repositories::redis::RedisError;

impl JobQueue {
    /// Done: acknowledged, removed, counted, and remembered as done.
    pub async fn complete(&self, delivery: &Delivery, job_id: &str) -> Result<(), RedisError> {
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("SET")
            .arg(self.keys.job_done(job_id))
            .arg(1)
            .arg("EX")
            .arg(7 * 24 * 3600)
            .ignore();
        self.acknowledge_into(&mut pipe, delivery);
        pipe.cmd("HINCRBY")
            .arg(self.keys.jobs_counters())
            .arg("delivered")
            .arg(1)
            .ignore();
        self.client.query_pipeline(&pipe).await
    }

    /// Whether a job with this id was completed before (a redelivery).
    pub async fn was_completed(&self, job_id: &str) -> Result<bool, RedisError> {
        self.client
            .query(redis::cmd("EXISTS").arg(self.keys.job_done(job_id)))
            .await
    }

    /// Acknowledges an entry without doing it (already done, or unreadable).
    pub async fn discard(&self, delivery: &Delivery) -> Result<(), RedisError> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        self.acknowledge_into(&mut pipe, delivery);
        self.client.query_pipeline(&pipe).await
    }

    /// Schedules another attempt after `delay`, atomically with taking the
    /// job off the stream.
    pub async fn retry_later(
        &self,
        delivery: &Delivery,
        job: &Job,
        delay: Duration,
    ) -> Result<(), RedisError> {
        let due = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000
            + delay.as_millis() as i128;
        let payload = serde_json::to_vec(job)?;
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("ZADD")
            .arg(self.keys.jobs_delayed())
            .arg(due as i64)
            .arg(payload)
            .ignore();
        self.acknowledge_into(&mut pipe, delivery);
        pipe.cmd("HINCRBY")
            .arg(self.keys.jobs_counters())
            .arg("retried")
            .arg(1)
            .ignore();
        self.client.query_pipeline(&pipe).await
    }

    /// Gives up on a job: it goes to the dead-letter list with the reason.
    pub async fn bury(
        &self,
        delivery: &Delivery,
        job: Option<&Job>,
        error: &str,
    ) -> Result<(), RedisError> {
        let entry = serde_json::json!({"job": job, "entry": delivery.entry_id, "error": error});
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("LPUSH")
            .arg(self.keys.jobs_dead())
            .arg(entry.to_string())
            .ignore();
        self.acknowledge_into(&mut pipe, delivery);
        self.client.query_pipeline(&pipe).await
    }

    fn acknowledge_into(&self, pipe: &mut redis::Pipeline, delivery: &Delivery) {
        let stream = self.keys.jobs_stream();
        pipe.cmd("XACK")
            .arg(&stream)
            .arg(GROUP)
            .arg(&delivery.entry_id)
            .ignore();
        pipe.cmd("XDEL")
            .arg(&stream)
            .arg(&delivery.entry_id)
            .ignore();
    }
}
