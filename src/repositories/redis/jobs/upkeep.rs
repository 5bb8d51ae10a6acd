//! Keeping the queue moving and reporting on it: due retries back into
//! the stream, dead jobs replayed (both by script), and the counts.

use super::{GROUP, JobQueue};
use crate::domain::QueueCounts;
use crate::repositories::redis::RedisError;

impl JobQueue {
    /// Moves retries whose time has come back into the stream.
    pub async fn promote_due(&self) -> Result<u64, RedisError> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
        let mut invocation = self.promote_script.key(self.keys.jobs_delayed());
        invocation
            .key(self.keys.jobs_stream())
            .arg(now as i64)
            .arg(100);
        self.client.invoke(&invocation).await
    }

    /// Puts up to `limit` dead jobs back in the stream with fresh attempts.
    pub async fn replay_dead(&self, limit: u64) -> Result<u64, RedisError> {
        let mut invocation = self.replay_script.key(self.keys.jobs_dead());
        invocation.key(self.keys.jobs_stream()).arg(limit);
        self.client.invoke(&invocation).await
    }

    pub async fn counts(&self) -> Result<QueueCounts, RedisError> {
        let mut pipe = redis::pipe();
        pipe.cmd("XLEN").arg(self.keys.jobs_stream());
        pipe.cmd("XPENDING").arg(self.keys.jobs_stream()).arg(GROUP);
        pipe.cmd("ZCARD").arg(self.keys.jobs_delayed());
        pipe.cmd("LLEN").arg(self.keys.jobs_dead());
        pipe.cmd("HMGET")
            .arg(self.keys.jobs_counters())
            .arg("retried")
            .arg("delivered");
        type Summary = (u64, redis::Value, redis::Value, redis::Value);
        let (length, pending, delayed, dead, counters): (
            u64,
            Summary,
            u64,
            u64,
            (Option<u64>, Option<u64>),
        ) = self.client.query_pipeline(&pipe).await?;
        let in_flight = pending.0;
        Ok(QueueCounts {
            pending: length.saturating_sub(in_flight),
            in_flight,
            delayed,
            dead,
            retried: counters.0.unwrap_or(0),
            delivered: counters.1.unwrap_or(0),
        })
    }
}
