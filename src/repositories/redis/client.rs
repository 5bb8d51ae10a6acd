//! The Redis client: its error type, and the operations every store runs
//! through it, on a single Redis (`lanes`) or on Redis Cluster (`cluster`).

mod cluster;
mod connect;
mod lanes;

use std::sync::Arc;
use std::time::Duration;

use redis::FromRedisValue;

use cluster::Cluster;
use lanes::Shared;

pub use cluster::{NodeAddress, SlotMap};
pub use connect::{connection_info, tls_certificates};

#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("no redis connection")]
    Pool(#[from] deadpool_redis::PoolError),
    #[error("redis command failed")]
    Command(#[from] redis::RedisError),
    #[error("redis client setup failed: {0}")]
    Setup(String),
    /// A value could not be encoded for storing: nothing was sent.
    #[error("encoding a value for redis failed")]
    Encode(#[from] serde_json::Error),
}

/// Redis access for the whole process. Each thread that uses Redis (an
/// actix worker, a tokio worker) gets a deadpool pool of its own, built on
/// first use, whose connections are therefore driven on that thread: a
/// command never waits for another thread to send it or to hand its reply
/// back. An operation does not check a connection out each time either (a
/// checkout costs a PING round trip, and a multiplexed connection serves
/// any number of concurrent requests anyway): a few "lanes" per thread each
/// hold one pooled connection, and operations take turns on them. Every
/// operation (getting a connection included) is bounded by
/// `operation_timeout`, so a hung Redis costs a request at most that long.
/// Cancelling a command is safe on a multiplexed connection: a late reply
/// is matched to its own request and dropped.
///
/// On Redis Cluster (`redis.cluster_nodes`) the same operations run on the
/// redis crate's async cluster connection instead: one multiplexed
/// connection per master, slot routing and MOVED/ASK redirections done by
/// the crate, shared by every thread.
#[derive(Clone)]
pub struct RedisClient {
    shared: Arc<Shared>,
    cluster: Option<Arc<Cluster>>,
    operation_timeout: Duration,
}

impl RedisError {
    /// The code a Redis server error starts with (`NOGROUP`, `BUSYGROUP`,
    /// `WRONGPASS`, ...), if this is one.
    pub fn server_code(&self) -> Option<&str> {
        match self {
            RedisError::Command(error) => error.code(),
            RedisError::Pool(deadpool_redis::PoolError::Backend(error)) => error.code(),
            _ => None,
        }
    }

    /// Whether the connection that gave this error should not be used again.
    fn breaks_the_connection(&self) -> bool {
        matches!(self, RedisError::Timeout(_)) || self.is_connection_failure()
    }

    /// Whether the connection itself failed (closed, reset, unusable).
    fn is_connection_failure(&self) -> bool {
        match self {
            RedisError::Command(error) => {
                error.is_io_error()
                    || error.is_connection_dropped()
                    || error.is_unrecoverable_error()
            }
            _ => false,
        }
    }
}

impl RedisClient {
    /// Readiness: a single Redis answers PING; a cluster says
    /// `cluster_state:ok` and every master that holds slots answers PING.
    pub async fn check_ready(&self) -> Result<(), RedisError> {
        if !self.is_cluster() {
            return self.ping().await;
        }
        let info: String = self.query(redis::cmd("CLUSTER").arg("INFO")).await?;
        if !info.lines().any(|line| line.trim() == "cluster_state:ok") {
            return Err(RedisError::Setup("cluster_state is not ok".into()));
        }
        let masters = self.masters().await?;
        let ping = redis::cmd("PING");
        futures_util::future::try_join_all(
            masters
                .iter()
                .map(|node| self.query_node::<String>(node, &ping)),
        )
        .await
        .map(drop)
    }

    pub async fn ping(&self) -> Result<(), RedisError> {
        self.query::<String>(&redis::cmd("PING")).await.map(drop)
    }

    /// Whether this client runs on Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.cluster.is_some()
    }

    pub async fn query<T: FromRedisValue>(&self, command: &redis::Cmd) -> Result<T, RedisError> {
        if let Some(cluster) = self.cluster() {
            return self
                .on_cluster(cluster, async |mut connection| {
                    Ok(command.query_async(&mut connection).await?)
                })
                .await;
        }
        self.on_lane(async |mut connection| Ok(command.query_async(&mut connection).await?))
            .await
    }

    pub async fn query_pipeline<T: FromRedisValue>(
        &self,
        pipeline: &redis::Pipeline,
    ) -> Result<T, RedisError> {
        if let Some(cluster) = self.cluster() {
            return self
                .on_cluster(cluster, async |mut connection| {
                    Ok(pipeline.query_async(&mut connection).await?)
                })
                .await;
        }
        self.on_lane(async |mut connection| Ok(pipeline.query_async(&mut connection).await?))
            .await
    }

    pub async fn invoke<T: FromRedisValue>(
        &self,
        script: &redis::ScriptInvocation<'_>,
    ) -> Result<T, RedisError> {
        if let Some(cluster) = self.cluster() {
            return self
                .on_cluster(cluster, async |mut connection| {
                    Ok(script.invoke_async(&mut connection).await?)
                })
                .await;
        }
        self.on_lane(async |mut connection| Ok(script.invoke_async(&mut connection).await?))
            .await
    }
}
