//! The single-Redis side of a client: each thread's own deadpool pool and
//! the few lanes of pooled connections that its operations take turns on.

use std::cell::RefCell;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use deadpool_redis::{Connection as Object, Manager, Pool, Runtime};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ConnectionInfo};

use super::{RedisClient, RedisError};
use crate::config::RedisSettings;

pub(super) struct Shared {
    /// Tells this client's lanes from other clients' in a thread's table.
    id: u64,
    connection: ConnectionInfo,
    config: AsyncConnectionConfig,
    settings: RedisSettings,
    /// Every thread's pool, for status and for closing.
    pools: Mutex<Vec<Pool>>,
    closed: AtomicBool,
    /// Bumped when a connection of this client fails (not a mere timeout):
    /// the usual cause, Redis restarting or the network dropping, breaks
    /// every thread's connections at once, and each thread would otherwise
    /// find out with one failed request per lane.
    failures: AtomicU64,
}

/// One thread's pool and lanes, for one client.
struct ThreadLanes {
    pool: Pool,
    /// Each lane's connection, and `failures` when it was opened.
    slots: Vec<Option<(Object, u64)>>,
    next: usize,
}

static NEXT_CLIENT_ID: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static LANES: RefCell<HashMap<u64, ThreadLanes>> = RefCell::new(HashMap::new());
}

impl Shared {
    pub(super) fn new(
        connection: ConnectionInfo,
        config: AsyncConnectionConfig,
        settings: &RedisSettings,
    ) -> Self {
        Self {
            id: NEXT_CLIENT_ID.fetch_add(1, Ordering::Relaxed),
            connection,
            config,
            settings: settings.clone(),
            pools: Mutex::default(),
            closed: AtomicBool::new(false),
            failures: AtomicU64::new(0),
        }
    }

    fn thread_pool(&self) -> Result<Pool, RedisError> {
        let manager = Manager::new_with_config(self.connection.clone(), self.config.clone())?;
        let settings = &self.settings;
        let pool = Pool::builder(manager)
            .max_size(settings.pool_max_size.max(1))
            .wait_timeout(Some(Duration::from_millis(settings.wait_timeout_ms)))
            .create_timeout(Some(Duration::from_millis(settings.create_timeout_ms)))
            .recycle_timeout(Some(Duration::from_millis(settings.recycle_timeout_ms)))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|error| RedisError::Setup(error.to_string()))?;
        if self.closed.load(Ordering::Acquire) {
            pool.close();
        }
        self.pools
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(pool.clone());
        Ok(pool)
    }
}

impl RedisClient {
    pub(super) async fn warm_up(&self, count: usize) {
        let Ok(pool) = self.with_lanes(|lanes| lanes.pool.clone()) else {
            return;
        };
        let mut held = Vec::with_capacity(count);
        for _ in 0..count.min(pool.status().max_size) {
            match pool.get().await {
                Ok(connection) => held.push(connection),
                Err(error) => {
                    tracing::warn!(error = %error, "could not open every initial Redis connection");
                    break;
                }
            }
        }
    }

    /// Runs `f` on this thread's lanes of this client, creating them on
    /// first use. Never held across an await.
    fn with_lanes<R>(&self, f: impl FnOnce(&mut ThreadLanes) -> R) -> Result<R, RedisError> {
        LANES
            .try_with(|table| {
                let mut table = table.borrow_mut();
                let lanes = match table.entry(self.shared.id) {
                    Entry::Occupied(entry) => entry.into_mut(),
                    Entry::Vacant(entry) => entry.insert(ThreadLanes {
                        pool: self.shared.thread_pool()?,
                        slots: (0..self.shared.settings.lanes.max(1))
                            .map(|_| None)
                            .collect(),
                        next: 0,
                    }),
                };
                Ok(f(lanes))
            })
            .map_err(|_| RedisError::Setup("thread is exiting".into()))?
    }

    /// Runs `operation` on the next lane's connection, within the operation
    /// timeout. A lane whose connection failed or hung is emptied, and
    /// refilled from the pool by the next operation that comes to it.
    pub(super) async fn on_lane<T>(
        &self,
        operation: impl AsyncFnOnce(MultiplexedConnection) -> Result<T, RedisError>,
    ) -> Result<T, RedisError> {
        let mut lane = None;
        let result = tokio::time::timeout(self.operation_timeout, async {
            let (index, connection) = self.lane_connection().await?;
            lane = Some(index);
            operation(connection).await
        })
        .await
        .unwrap_or(Err(RedisError::Timeout(self.operation_timeout)));
        if let (Err(error), Some(index)) = (&result, lane)
            && error.breaks_the_connection()
        {
            self.empty_lane(index);
            if error.is_connection_failure() {
                self.shared.failures.fetch_add(1, Ordering::AcqRel);
            }
        }
        result
    }

    async fn lane_connection(&self) -> Result<(usize, MultiplexedConnection), RedisError> {
        let failures = self.shared.failures.load(Ordering::Acquire);
        let (index, held, stale, pool) = self.with_lanes(|lanes| {
            let index = lanes.next;
            lanes.next = (index + 1) % lanes.slots.len();
            let slot = &mut lanes.slots[index];
            // Opened before a connection failure elsewhere: likely broken too.
            let stale = slot
                .take_if(|(_, opened)| *opened != failures)
                .map(|(object, _)| object);
            let held = slot
                .as_ref()
                .map(|(object, _)| MultiplexedConnection::clone(object));
            (index, held, stale, lanes.pool.clone())
        })?;
        if let Some(stale) = stale {
            drop(Object::take(stale));
        }
        if let Some(connection) = held {
            return Ok((index, connection));
        }
        let object = pool.get().await?;
        let connection = MultiplexedConnection::clone(&object);
        // If another request refilled the lane meanwhile, ours goes back to the pool.
        self.with_lanes(|lanes| {
            if let Some(slot) = lanes.slots.get_mut(index) {
                slot.get_or_insert((object, failures));
            }
        })?;
        Ok((index, connection))
    }

    /// Takes this thread's connection in lane `index` out of the pool for
    /// good: a broken connection must not be reused.
    fn empty_lane(&self, index: usize) {
        let held = self.with_lanes(|lanes| lanes.slots.get_mut(index).and_then(Option::take));
        if let Ok(Some((object, _))) = held {
            drop(Object::take(object));
        }
    }

    /// (connections open, of them idle, requests waiting for one), over
    /// every thread's pool.
    pub fn pool_status(&self) -> (usize, usize, usize) {
        let pools = self
            .shared
            .pools
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        pools
            .iter()
            .map(Pool::status)
            .fold((0, 0, 0), |sum, status| {
                (
                    sum.0 + status.size,
                    sum.1 + status.available,
                    sum.2 + status.waiting,
                )
            })
    }

    pub fn close(&self) {
        self.shared.closed.store(true, Ordering::Release);
        for pool in self
            .shared
            .pools
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            pool.close();
        }
    }
}
