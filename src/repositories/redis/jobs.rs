//! The job queue: a Redis stream with a consumer group (at-least-once
//! delivery: a job stays pending until acknowledged, and another worker
//! claims it if its worker goes quiet), a sorted set of jobs waiting to be
//! retried, and a dead-letter list.

use std::time::Duration;

use redis::Script;
use redis::aio::MultiplexedConnection;
use redis::cluster_async::ClusterConnection;
use redis::streams::{StreamAutoClaimReply, StreamId, StreamReadReply};

use super::{Keys, RedisClient, RedisError};
use crate::config::RedisSettings;
use crate::domain::{Job, QueueCounts};

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

/// A connection of one worker's own for blocking reads: a blocking read
/// would hold up every other command on a shared multiplexed connection,
/// and needs a response timeout longer than its block.
pub enum BlockingConnection {
    Single(MultiplexedConnection),
    /// A cluster connection of its own (the stream lives on one master,
    /// found and followed through failovers by the cluster client).
    Cluster(ClusterConnection),
}

impl BlockingConnection {
    pub async fn open(settings: &RedisSettings, block: Duration) -> Result<Self, RedisError> {
        let connect = Duration::from_millis(settings.create_timeout_ms);
        let respond = block + Duration::from_secs(2);
        let seeds = settings.cluster_seeds();
        if !seeds.is_empty() {
            let mut builder = redis::cluster::ClusterClientBuilder::new(seeds);
            if !settings.tls_ca_file.is_empty() {
                let file = &settings.tls_ca_file;
                let pem = std::fs::read(file).map_err(|error| {
                    RedisError::Setup(format!("cannot read redis.tls_ca_file {file}: {error}"))
                })?;
                builder = builder.certs(redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem),
                });
            }
            let config = redis::cluster::ClusterConfig::new()
                .set_connection_timeout(connect)
                .set_response_timeout(respond);
            let client = builder.build()?;
            return Ok(Self::Cluster(
                client.get_async_connection_with_config(config).await?,
            ));
        }
        let client = redis::Client::open(super::client::connection_info(settings)?)?;
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(connect))
            .set_response_timeout(Some(respond));
        Ok(Self::Single(
            client
                .get_multiplexed_async_connection_with_config(&config)
                .await?,
        ))
    }
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

    /// Moves the queue of a release before hash tags (`{prefix}jobs:stream`
    /// and its siblings, `{prefix}jobs:done:*`) to the tagged keys, so no
    /// waiting, delayed or dead job is lost in an upgrade. Run at every
    /// start after `ensure_group`; costs one EXISTS when there is nothing to
    /// move. Not on a cluster: no release before the tags ran on one.
    /// Returns how many jobs were moved.
    pub async fn migrate_untagged(&self) -> Result<u64, RedisError> {
        if self.client.is_cluster() {
            return Ok(0);
        }
        let script = Script::new(include_str!("scripts/jobs_migrate_untagged.lua"));
        let mut invocation = script.prepare_invoke();
        for key in self.keys.untagged_job_keys() {
            invocation.key(key);
        }
        invocation
            .key(self.keys.jobs_stream())
            .key(self.keys.jobs_delayed())
            .key(self.keys.jobs_dead())
            .key(self.keys.jobs_counters());
        let moved: i64 = self.client.invoke(&invocation).await?;
        if moved < 0 {
            return Ok(0);
        }
        // The done markers that stop a redelivered job from being done twice.
        let (pattern, old_prefix) = self.keys.untagged_job_done_pattern();
        let mut cursor = 0u64;
        loop {
            let (next, markers): (u64, Vec<String>) = self
                .client
                .query(
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(1000),
                )
                .await?;
            for marker in markers {
                if let Some(job_id) = marker.strip_prefix(&old_prefix) {
                    // RENAME keeps the TTL; a marker gone meanwhile is no loss.
                    let _: Result<(), RedisError> = self
                        .client
                        .query(
                            redis::cmd("RENAME")
                                .arg(&marker)
                                .arg(self.keys.job_done(job_id)),
                        )
                        .await;
                }
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        tracing::info!(moved, "job queue moved to its hash-tagged keys");
        Ok(moved as u64)
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
        let pending: Vec<(String, String, u64, u64)> = self
            .client
            .query(
                redis::cmd("XPENDING")
                    .arg(self.keys.jobs_stream())
                    .arg(GROUP)
                    .arg(entry_id)
                    .arg(entry_id)
                    .arg(1),
            )
            .await?;
        Ok(pending.first().map_or(1, |(_, _, _, count)| *count))
    }

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
