//! The Redis Cluster side of a client: connecting to it, running
//! operations on its connection, and reading its topology (which master
//! holds which slots).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{AsyncConnectionConfig, FromRedisValue, IntoConnectionInfo};

use super::connect::{describe_redis, tls_certificates};
use super::{RedisClient, RedisError};
use crate::config::{RedisSettings, redact_url};

/// The cluster side of a client.
pub(in crate::repositories::redis) struct Cluster {
    connection: ClusterConnection,
}

/// A master of the cluster, as `CLUSTER SLOTS` names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeAddress {
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for NodeAddress {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}:{}", self.host, self.port)
    }
}

/// Which master holds which slots: `(first slot, last slot, master)`, sorted.
pub type SlotMap = Vec<(u16, u16, NodeAddress)>;

impl RedisClient {
    pub(in crate::repositories::redis) fn cluster(&self) -> Option<&Arc<Cluster>> {
        self.cluster.as_ref()
    }

    /// Runs `operation` on the cluster connection, within the operation
    /// timeout.
    pub(super) async fn on_cluster<T>(
        &self,
        cluster: &Arc<Cluster>,
        operation: impl AsyncFnOnce(ClusterConnection) -> Result<T, RedisError>,
    ) -> Result<T, RedisError> {
        tokio::time::timeout(
            self.operation_timeout,
            operation(cluster.connection.clone()),
        )
        .await
        .unwrap_or(Err(RedisError::Timeout(self.operation_timeout)))
    }

    /// One command to one master of the cluster, by address (SCAN, INFO:
    /// answers of one node).
    pub(in crate::repositories::redis) async fn query_node<T: FromRedisValue>(
        &self,
        node: &NodeAddress,
        command: &redis::Cmd,
    ) -> Result<T, RedisError> {
        let Some(cluster) = self.cluster() else {
            return self.query(command).await;
        };
        let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
            host: node.host.clone(),
            port: node.port,
        });
        self.on_cluster(cluster, async |mut connection| {
            let value = connection.route_command(command.clone(), routing).await?;
            Ok(redis::from_redis_value(value).map_err(redis::RedisError::from)?)
        })
        .await
    }

    /// The cluster's slots and the master of each, as the cluster says now.
    pub(in crate::repositories::redis) async fn slot_map(&self) -> Result<SlotMap, RedisError> {
        let ranges: Vec<redis::Value> = self.query(redis::cmd("CLUSTER").arg("SLOTS")).await?;
        let mut map = SlotMap::new();
        for range in ranges {
            let redis::Value::Array(parts) = range else {
                continue;
            };
            let (Some(first), Some(last), Some(master)) =
                (parts.first(), parts.get(1), parts.get(2))
            else {
                continue;
            };
            let parse = |value: &redis::Value| {
                redis::from_redis_value_ref::<String>(value).map_err(redis::RedisError::from)
            };
            let number = |value: &redis::Value| {
                redis::from_redis_value_ref::<u16>(value).map_err(redis::RedisError::from)
            };
            let (first, last) = (number(first)?, number(last)?);
            let (host, port) = match master {
                redis::Value::Array(node) if node.len() >= 2 => {
                    (parse(&node[0])?, number(&node[1])?)
                }
                _ => continue,
            };
            map.push((first, last, NodeAddress { host, port }));
        }
        map.sort();
        Ok(map)
    }

    /// Every master that holds slots, in a stable order.
    pub(in crate::repositories::redis) async fn masters(
        &self,
    ) -> Result<Vec<NodeAddress>, RedisError> {
        let mut masters: Vec<NodeAddress> = self
            .slot_map()
            .await?
            .into_iter()
            .map(|(_, _, node)| node)
            .collect();
        masters.sort();
        masters.dedup();
        Ok(masters)
    }
}

/// Connects to the cluster: each seed node must answer (a clear error
/// names the first that does not), then the cluster connection is opened
/// and every master PINGed.
pub(super) async fn connect_cluster(
    settings: &RedisSettings,
    seeds: &[String],
) -> anyhow::Result<Cluster> {
    let connect_timeout = Duration::from_millis(settings.create_timeout_ms);
    // The CA file is read once, for the seed checks and the cluster client.
    let certificates = tls_certificates(settings)?;
    let mut infos = Vec::with_capacity(seeds.len());
    for seed in seeds {
        let shown = redact_url(seed);
        let info = seed
            .as_str()
            .into_connection_info()
            .with_context(|| format!("invalid Redis Cluster node {shown}"))?;
        // The seed is checked as the cluster client will reach it: with the
        // private CA, when one is set.
        let client = match certificates.clone() {
            Some(certificates) => redis::Client::build_with_tls(info.clone(), certificates),
            None => redis::Client::open(info.clone()),
        }
        .with_context(|| format!("invalid Redis Cluster node {shown}"))?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(connect_timeout))
            .set_response_timeout(Some(settings.operation_timeout().max(connect_timeout)));
        let answer = async {
            let mut connection = client
                .get_multiplexed_async_connection_with_config(&config)
                .await?;
            redis::cmd("CLUSTER")
                .arg("INFO")
                .query_async::<String>(&mut connection)
                .await
        };
        match answer.await {
            Ok(info) if info.contains("cluster_state:ok") => {}
            Ok(_) => anyhow::bail!(
                "Redis Cluster node {shown} answers, but its cluster is not ok \
                 (CLUSTER INFO has no cluster_state:ok)"
            ),
            Err(error) => anyhow::bail!(
                "Redis Cluster node {shown} is not usable: {}",
                describe_redis(&error)
            ),
        }
        infos.push(info);
    }
    let mut builder = ClusterClientBuilder::new(infos)
        .connection_timeout(connect_timeout)
        .response_timeout(settings.operation_timeout())
        .overall_response_timeout(None)
        // MOVED/ASK are followed at once; these waits are for a node that
        // is failing over or a slot being migrated (TRYAGAIN).
        .retries(8)
        .min_retry_wait(10)
        .max_retry_wait(200)
        .retry_wait_formula(10, 2);
    if let Some(certificates) = certificates {
        builder = builder.certs(certificates);
    }
    let client = builder
        .build()
        .context("invalid Redis Cluster settings (redis.cluster_nodes)")?;
    let mut connection = client
        .get_async_connection()
        .await
        .context("cannot connect to the Redis Cluster")?;
    // PING goes to every master: each must answer.
    tokio::time::timeout(
        connect_timeout + settings.operation_timeout(),
        redis::cmd("PING").query_async::<()>(&mut connection),
    )
    .await
    .map_err(|_| anyhow::anyhow!("a Redis Cluster master did not answer PING in time"))?
    .context("a Redis Cluster master does not answer")?;
    Ok(Cluster { connection })
}
