//! The connection a worker waits for jobs on.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::cluster_async::ClusterConnection;

use crate::config::RedisSettings;
use crate::repositories::redis::RedisError;
use crate::repositories::redis::client::{connection_info, tls_certificates};

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
            if let Some(certificates) = tls_certificates(settings)? {
                builder = builder.certs(certificates);
            }
            let config = redis::cluster::ClusterConfig::new()
                .set_connection_timeout(connect)
                .set_response_timeout(respond);
            let client = builder.build()?;
            return Ok(Self::Cluster(
                client.get_async_connection_with_config(config).await?,
            ));
        }
        let client = redis::Client::open(connection_info(settings)?)?;
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
