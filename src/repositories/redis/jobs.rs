//! The job queue: a Redis stream with a consumer group (at-least-once
//! delivery: a job stays pending until acknowledged, and another worker
//! claims it if its worker goes quiet), a sorted set of jobs waiting to be
//! retried, and a dead-letter list.
//!
//! Here: taking jobs in and handing them out. How a delivery ends
//! (`settle`), the retry and dead-letter scripts and the counts (`upkeep`),
//! the blocking connection a worker reads with (`connection`) and the move
//! from the keys of older releases (`migrate`) have files of their own.

mod connection;
mod migrate;
mod settle;
mod upkeep;

use std::time::Duration;

use redis::Script;
use redis::streams::{StreamAutoClaimReply, StreamClaimReply, StreamId, StreamReadReply};

use super::{Keys, RedisClient, RedisError};
use crate::domain::Job;

pub use connection::BlockingConnection;

const GROUP: &str = "workers";
const FIELD: &str = "job";

/// A job as handed to one worker.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub entry_id: String,
    /// How many times the stream has handed this entry out.
    pub deliveries: u64,
    pub job: Result<Job, String>,
}

#[derive(Clone)]
pub struct JobQueue {
    client: RedisClient,
    keys: Keys,
    promote_script: Script,
    replay_script: Script,
}

fn delivery_of(entry: &StreamId) -> Delivery {
    let job = entry
        .get::<Vec<u8>>(FIELD)
        .ok_or_else(|| "entry has no job field".to_string())
        .and_then(|payload| serde_json::from_slice(&payload).map_err(|error| error.to_string()));
    Delivery {
        entry_id: entry.id.clone(),
        deliveries: 1,
        job,
    }
}

impl JobQueue {
    pub fn new(client: RedisClient, keys: Keys) -> Self {
        Self {
            client,
            keys,
            promote_script: Script::new(include_str!("scripts/jobs_promote_due.lua")),
            replay_script: Script::new(include_str!("scripts/jobs_replay_dead.lua")),
        }
    }

    /// Creates the stream and its consumer group if they do not exist.
    pub async fn ensure_group(&self) -> Result<(), RedisError> {
        let created: Result<(), RedisError> = self
            .client
            .query(
                redis::cmd("XGROUP")
                    .arg("CREATE")
                    .arg(self.keys.jobs_stream())
                    .arg(GROUP)
                    .arg("0")
                    .arg("MKSTREAM"),
            )
            .await;
        match created {
            Err(error) if error.server_code() == Some("BUSYGROUP") => Ok(()),
            other => other,
        }
    }

    pub async fn enqueue(&self, job: &Job) -> Result<(), RedisError> {
        let payload = serde_json::to_vec(job)?;
        let _: String = self
            .client
            .query(
                redis::cmd("XADD")
                    .arg(self.keys.jobs_stream())
                    .arg("*")
                    .arg(FIELD)
                    .arg(payload),
            )
            .await?;
        Ok(())
    }

    /// Waits up to `block` for a new job for `consumer`. When Redis has
    /// lost the stream or its group (restarted empty), makes them again and
    /// answers `None`.
    pub async fn next(
        &self,
        connection: &mut BlockingConnection,
        consumer: &str,
        block: Duration,
    ) -> Result<Option<Delivery>, RedisError> {
        let mut command = redis::cmd("XREADGROUP");
        command
            .arg("GROUP")
            .arg(GROUP)
            .arg(consumer)
            .arg("COUNT")
            .arg(1)
            .arg("BLOCK")
            .arg(block.as_millis() as u64)
            .arg("STREAMS")
            .arg(self.keys.jobs_stream())
            .arg(">");
        let reply = match connection {
            BlockingConnection::Single(connection) => command.query_async(connection).await,
            BlockingConnection::Cluster(connection) => command.query_async(connection).await,
        };
        let reply: Option<StreamReadReply> = match reply.map_err(RedisError::from) {
            Err(error) if error.server_code() == Some("NOGROUP") => {
                // Redis lost the stream (restarted empty): make it again;
                // the next read finds whatever is queued from now on.
                tracing::warn!("the job stream or its group was gone; made it again");
                self.ensure_group().await?;
                return Ok(None);
            }
            other => other?,
        };
        Ok(reply
            .iter()
            .flat_map(|reply| &reply.keys)
            .flat_map(|key| &key.ids)
            .map(delivery_of)
            .next())
    }

    /// The oldest job already handed to `consumer` and not settled (the
    /// reply to its read was lost, or settling it failed), handed to it
    /// again. `XCLAIM` counts the delivery, so a job that keeps failing is
    /// dead-lettered as a claimed one is; being a write, it also fails
    /// while Redis refuses writes, when nothing could be settled anyway.
    /// Its min-idle is the idle time just read: if another worker claimed
    /// the job in between (which resets it), nothing is taken. Nor is an
    /// entry deleted from the stream. Does not block.
    pub async fn own_pending(&self, consumer: &str) -> Result<Option<Delivery>, RedisError> {
        let Some(pending) = self.first_pending("-", "+", Some(consumer)).await? else {
            return Ok(None);
        };
        let claimed: StreamClaimReply = self
            .client
            .query(
                redis::cmd("XCLAIM")
                    .arg(self.keys.jobs_stream())
                    .arg(GROUP)
                    .arg(consumer)
                    .arg(pending.idle_ms)
                    .arg(&pending.entry_id),
            )
            .await?;
        Ok(claimed.ids.first().map(|entry| Delivery {
            deliveries: pending.deliveries + 1,
            ..delivery_of(entry)
        }))
    }

    /// Takes over jobs that another worker has held for longer than
    /// `visibility_timeout` without acknowledging them (it died, or hangs).
    pub async fn claim_stale(
        &self,
        consumer: &str,
        visibility_timeout: Duration,
    ) -> Result<Vec<Delivery>, RedisError> {
        let reply: StreamAutoClaimReply = self
            .client
            .query(
                redis::cmd("XAUTOCLAIM")
                    .arg(self.keys.jobs_stream())
                    .arg(GROUP)
                    .arg(consumer)
                    .arg(visibility_timeout.as_millis() as u64)
                    .arg("0-0")
                    .arg("COUNT")
                    .arg(10),
            )
            .await?;
        let mut claimed = Vec::new();
        for entry in &reply.claimed {
            let mut delivery = delivery_of(entry);
            delivery.deliveries = self.delivery_count(&entry.id).await.unwrap_or(2);
            claimed.push(delivery);
        }
        Ok(claimed)
    }

    async fn delivery_count(&self, entry_id: &str) -> Result<u64, RedisError> {
        let pending = self.first_pending(entry_id, entry_id, None).await?;
        Ok(pending.map_or(1, |pending| pending.deliveries))
    }

    /// The first pending entry between `from` and `to` (of `consumer`, if
    /// given).
    async fn first_pending(
        &self,
        from: &str,
        to: &str,
        consumer: Option<&str>,
    ) -> Result<Option<Pending>, RedisError> {
        let mut command = redis::cmd("XPENDING");
        command
            .arg(self.keys.jobs_stream())
            .arg(GROUP)
            .arg(from)
            .arg(to)
            .arg(1)
            .arg(consumer);
        let pending: Vec<(String, String, u64, u64)> = self.client.query(&command).await?;
        Ok(pending
            .into_iter()
            .next()
            .map(|(entry_id, _, idle_ms, deliveries)| Pending {
                entry_id,
                idle_ms,
                deliveries,
            }))
    }
}

/// An entry handed out and not acknowledged.
struct Pending {
    entry_id: String,
    /// Since it was last handed out.
    idle_ms: u64,
    /// How many times it was handed out.
    deliveries: u64,
}
