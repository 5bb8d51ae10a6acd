use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context;
use deadpool_redis::{Connection as Object, Manager, Pool, Runtime};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, FromRedisValue};
use secrecy::ExposeSecret;

use crate::config::{RedisSettings, redact_url};

#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("no redis connection")]
    Pool(#[from] deadpool_redis::PoolError),
    #[error("redis command failed")]
    Command(#[from] redis::RedisError),
}

/// Redis access for the whole process. Connections come from a deadpool
/// pool, but an operation does not check one out each time: a checkout
/// costs a PING round trip, and a multiplexed connection serves any number
/// of concurrent requests anyway. A few "lanes" each hold one pooled
/// connection, and operations take turns on them. Every operation (getting
/// a connection included) is bounded by `operation_timeout`, so a hung
/// Redis costs a request at most that long. Cancelling a command is safe on
/// a multiplexed connection: a late reply is matched to its own request and
/// dropped.
#[derive(Clone)]
pub struct RedisClient {
    pool: Pool,
    lanes: Arc<Lanes>,
    operation_timeout: Duration,
}

struct Lanes {
    slots: Vec<Mutex<Option<Object>>>,
    next: AtomicUsize,
}

impl RedisError {
    /// Whether the connection that gave this error should not be used again.
    fn breaks_the_connection(&self) -> bool {
        match self {
            RedisError::Timeout(_) => true,
            RedisError::Pool(_) => false,
            RedisError::Command(error) => {
                error.is_io_error()
                    || error.is_connection_dropped()
                    || error.is_unrecoverable_error()
            }
        }
    }
}

impl RedisClient {
    /// Builds the pool, checks Redis answers, and opens `pool_min_idle`
    /// connections up front.
    pub async fn connect(settings: &RedisSettings) -> anyhow::Result<Self> {
        let url = settings.url.expose_secret();
        let shown = redact_url(url);
        let connection = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(settings.create_timeout_ms)))
            .set_response_timeout(Some(settings.operation_timeout()));
        let manager = Manager::new_with_config(url, connection)
            .with_context(|| format!("invalid Redis URL {shown}"))?;
        let pool = Pool::builder(manager)
            .max_size(settings.pool_max_size.max(1))
            .wait_timeout(Some(Duration::from_millis(settings.wait_timeout_ms)))
            .create_timeout(Some(Duration::from_millis(settings.create_timeout_ms)))
            .recycle_timeout(Some(Duration::from_millis(settings.recycle_timeout_ms)))
            .runtime(Runtime::Tokio1)
            .build()
            .context("cannot build the Redis pool")?;
        let lanes = Lanes {
            slots: (0..settings.lanes.max(1))
                .map(|_| Mutex::new(None))
                .collect(),
            next: AtomicUsize::new(0),
        };
        let client = Self {
            pool,
            lanes: Arc::new(lanes),
            operation_timeout: settings.operation_timeout(),
        };
        client
            .ping()
            .await
            .map_err(|error| anyhow::anyhow!("Redis at {shown} {}", describe(&error)))?;
        client.warm_up(settings.pool_min_idle).await;
        Ok(client)
    }

    async fn warm_up(&self, count: usize) {
        let mut held = Vec::with_capacity(count);
        for _ in 0..count.min(self.pool.status().max_size) {
            match self.pool.get().await {
                Ok(connection) => held.push(connection),
                Err(error) => {
                    tracing::warn!(error = %error, "could not open every initial Redis connection");
                    break;
                }
            }
        }
    }

    pub async fn ping(&self) -> Result<(), RedisError> {
        self.query::<String>(&redis::cmd("PING")).await.map(drop)
    }

    pub async fn query<T: FromRedisValue>(&self, command: &redis::Cmd) -> Result<T, RedisError> {
        self.on_lane(async |mut connection| Ok(command.query_async(&mut connection).await?))
            .await
    }

    pub async fn query_pipeline<T: FromRedisValue>(
        &self,
        pipeline: &redis::Pipeline,
    ) -> Result<T, RedisError> {
        self.on_lane(async |mut connection| Ok(pipeline.query_async(&mut connection).await?))
            .await
    }

    pub async fn invoke<T: FromRedisValue>(
        &self,
        script: &redis::ScriptInvocation<'_>,
    ) -> Result<T, RedisError> {
        self.on_lane(async |mut connection| Ok(script.invoke_async(&mut connection).await?))
            .await
    }

    /// Runs `operation` on the next lane's connection, within the operation
    /// timeout. A lane whose connection failed or hung is emptied, and
    /// refilled from the pool by the next operation that comes to it.
    async fn on_lane<T>(
        &self,
        operation: impl AsyncFnOnce(MultiplexedConnection) -> Result<T, RedisError>,
    ) -> Result<T, RedisError> {
        let index = self.lanes.next.fetch_add(1, Ordering::Relaxed) % self.lanes.slots.len();
        let result = tokio::time::timeout(self.operation_timeout, async {
            let connection = self.lane_connection(index).await?;
            operation(connection).await
        })
        .await
        .unwrap_or(Err(RedisError::Timeout(self.operation_timeout)));
        if let Err(error) = &result
            && error.breaks_the_connection()
        {
            self.empty_lane(index);
        }
        result
    }

    async fn lane_connection(&self, index: usize) -> Result<MultiplexedConnection, RedisError> {
        let slot = &self.lanes.slots[index];
        if let Some(held) = slot.lock().unwrap_or_else(PoisonError::into_inner).as_ref() {
            return Ok(MultiplexedConnection::clone(held));
        }
        let object = self.pool.get().await?;
        let connection = MultiplexedConnection::clone(&object);
        // If another request refilled the lane meanwhile, ours goes back to the pool.
        slot.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert(object);
        Ok(connection)
    }

    fn empty_lane(&self, index: usize) {
        let held = self.lanes.slots[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        // Taken out of the pool for good: a broken connection must not be reused.
        if let Some(object) = held {
            drop(Object::take(object));
        }
    }

    /// (connections open, of them idle, requests waiting for one)
    pub fn pool_status(&self) -> (usize, usize, usize) {
        let status = self.pool.status();
        (status.size, status.available, status.waiting)
    }

    pub fn close(&self) {
        self.pool.close();
    }
}

/// Says which of the usual start-up failures this is.
fn describe(error: &RedisError) -> String {
    let cause = match error {
        RedisError::Timeout(after) => format!("did not answer within {after:?} (timeout)"),
        RedisError::Pool(deadpool_redis::PoolError::Timeout(_)) => {
            "did not answer in time (timeout)".to_string()
        }
        RedisError::Pool(deadpool_redis::PoolError::Backend(inner))
        | RedisError::Command(inner) => describe_redis(inner),
        RedisError::Pool(other) => other.to_string(),
    };
    format!("is not usable: {cause}")
}

fn describe_redis(error: &redis::RedisError) -> String {
    if error.is_connection_refusal() {
        format!("connection refused ({error})")
    } else if error.is_timeout() {
        format!("timeout ({error})")
    } else if matches!(error.kind(), redis::ErrorKind::AuthenticationFailed)
        || error.to_string().contains("NOAUTH")
        || error.to_string().contains("WRONGPASS")
    {
        format!("authentication failed ({error})")
    } else {
        error.to_string()
    }
}
