//! The link that keeps a [`NearCache`] coherent: one RESP3 connection with
//! `CLIENT TRACKING ON BCAST` for the tracked prefixes, so Redis itself
//! pushes the name of every key that changes under them — whoever changed
//! it, including expiry, eviction and FLUSHDB. The link is PINGed; when it
//! fails or hangs the near cache is flushed and bypassed until a new link
//! is up.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ProtocolVersion, PushInfo, PushKind, Value};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::{NearCache, RedisError};
use crate::config::RedisSettings;

/// The name the link's connection has in `CLIENT LIST`.
pub const CLIENT_NAME: &str = "user-api-near-cache";

const RECONNECT_PAUSE: Duration = Duration::from_millis(250);

/// The running link; stopping it (or dropping it) leaves the near cache
/// bypassed.
pub struct TrackingLink {
    task: JoinHandle<()>,
    near: Arc<NearCache>,
}

impl TrackingLink {
    /// Starts keeping `near` coherent with the keys under `prefixes`,
    /// PINGing the link every `heartbeat`.
    pub fn start(
        settings: &RedisSettings,
        prefixes: Vec<String>,
        near: Arc<NearCache>,
        heartbeat: Duration,
    ) -> Self {
        let link = Link {
            settings: settings.clone(),
            prefixes,
            near: near.clone(),
            heartbeat,
            generation: Arc::new(AtomicU64::new(0)),
        };
        Self {
            task: tokio::spawn(link.run()),
            near,
        }
    }

    pub fn stop(&self) {
        self.task.abort();
        self.near.link_lost();
    }
}

impl Drop for TrackingLink {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Link {
    settings: RedisSettings,
    prefixes: Vec<String>,
    near: Arc<NearCache>,
    heartbeat: Duration,
    /// Which connection is the current one: pushes from an older one
    /// (its late disconnection notice) are ignored.
    generation: Arc<AtomicU64>,
}

impl Link {
    async fn run(self) {
        let mut was_up = true;
        loop {
            let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
            let lost = Arc::new(Notify::new());
            match self.open(generation, lost.clone()).await {
                Ok(connection) => {
                    self.near.link_established();
                    tracing::info!("near cache: tracking link up");
                    was_up = true;
                    self.keep_alive(connection, &lost).await;
                    self.near.link_lost();
                    tracing::warn!("near cache: tracking link lost; flushed and bypassed");
                }
                Err(error) if was_up => {
                    was_up = false;
                    tracing::warn!(error = %error, "near cache: cannot open the tracking link; retrying");
                }
                Err(_) => {}
            }
            self.generation.fetch_add(1, Ordering::AcqRel);
            tokio::time::sleep(RECONNECT_PAUSE).await;
        }
    }

    async fn open(
        &self,
        generation: u64,
        lost: Arc<Notify>,
    ) -> Result<MultiplexedConnection, RedisError> {
        let info = super::client::connection_info(&self.settings)?;
        let resp3 = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let client = redis::Client::open(info.set_redis_settings(resp3))?;
        let (near, current) = (self.near.clone(), self.generation.clone());
        let on_push = move |push: PushInfo| {
            if current.load(Ordering::Acquire) != generation {
                return Ok::<(), redis::aio::SendError>(());
            }
            match push.kind {
                PushKind::Invalidate => invalidate(&near, &push.data),
                PushKind::Disconnection => {
                    near.link_lost();
                    lost.notify_one();
                }
                _ => {}
            }
            Ok(())
        };
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(self.settings.create_timeout_ms)))
            .set_response_timeout(Some(self.settings.operation_timeout()))
            .set_push_sender(on_push);
        let bounded = tokio::time::timeout(self.settings.operation_timeout() * 2, async {
            let mut connection = client
                .get_multiplexed_async_connection_with_config(&config)
                .await?;
            redis::cmd("CLIENT")
                .arg("SETNAME")
                .arg(CLIENT_NAME)
                .query_async::<()>(&mut connection)
                .await?;
            let mut tracking = redis::cmd("CLIENT");
            tracking.arg("TRACKING").arg("ON").arg("BCAST");
            for prefix in &self.prefixes {
                tracking.arg("PREFIX").arg(prefix);
            }
            tracking.query_async::<()>(&mut connection).await?;
            Ok::<_, RedisError>(connection)
        });
        bounded.await.unwrap_or(Err(RedisError::Timeout(
            self.settings.operation_timeout() * 2,
        )))
    }

    /// Returns when the link is gone: disconnected, or a PING failed or
    /// took longer than the operation timeout.
    async fn keep_alive(&self, mut connection: MultiplexedConnection, lost: &Notify) {
        loop {
            tokio::select! {
                () = lost.notified() => return,
                () = tokio::time::sleep(self.heartbeat) => {}
            }
            let ping = redis::cmd("PING");
            let ping = ping.query_async::<()>(&mut connection);
            match tokio::time::timeout(self.settings.operation_timeout(), ping).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    tracing::warn!(error = %error, "near cache: tracking link PING failed");
                    return;
                }
                Err(_) => {
                    tracing::warn!("near cache: tracking link PING timed out");
                    return;
                }
            }
        }
    }
}

/// An `invalidate` push carries the changed keys, or nil when the whole
/// database was flushed.
fn invalidate(near: &NearCache, data: &[Value]) {
    match data.first() {
        Some(Value::Array(keys)) => {
            for key in keys {
                if let Value::BulkString(key) = key
                    && let Ok(key) = std::str::from_utf8(key)
                {
                    near.invalidate(key);
                }
            }
        }
        _ => near.flush(),
    }
}
