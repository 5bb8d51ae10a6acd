use std::cell::RefCell;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context;
use deadpool_redis::{Connection as Object, Manager, Pool, Runtime};
use redis::aio::MultiplexedConnection;
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{AsyncConnectionConfig, ConnectionInfo, FromRedisValue, IntoConnectionInfo};
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

/// The cluster side of a client.
pub(super) struct Cluster {
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

struct Shared {
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

impl Shared {
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
    /// Checks the settings and that Redis answers, and opens
    /// `pool_min_idle` connections up front for the calling thread.
    pub async fn connect(settings: &RedisSettings) -> anyhow::Result<Self> {
        let seeds = settings.cluster_seeds();
        let cluster = if seeds.is_empty() {
            None
        } else {
            Some(Arc::new(connect_cluster(settings, &seeds).await?))
        };
        let shown = redact_url(settings.url.expose_secret());
        let connection = if cluster.is_some() {
            // Unused on a cluster; kept so the type stays one.
            "redis://127.0.0.1:6379".into_connection_info()?
        } else {
            connection_info(settings).with_context(|| format!("invalid Redis URL {shown}"))?
        };
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(settings.create_timeout_ms)))
            .set_response_timeout(Some(settings.operation_timeout()));
        let client = Self {
            shared: Arc::new(Shared {
                id: NEXT_CLIENT_ID.fetch_add(1, Ordering::Relaxed),
                connection,
                config,
                settings: settings.clone(),
                pools: Mutex::default(),
                closed: AtomicBool::new(false),
                failures: AtomicU64::new(0),
            }),
            cluster,
            operation_timeout: settings.operation_timeout(),
        };
        if client.cluster.is_some() {
            return Ok(client);
        }
        client
            .ping()
            .await
            .map_err(|error| anyhow::anyhow!("Redis at {shown} {}", describe(&error)))?;
        client.warm_up(settings.pool_min_idle).await;
        Ok(client)
    }

    async fn warm_up(&self, count: usize) {
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

    pub(super) fn cluster(&self) -> Option<&Arc<Cluster>> {
        self.cluster.as_ref()
    }

    /// Runs `operation` on the cluster connection, within the operation
    /// timeout.
    async fn on_cluster<T>(
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
    pub(super) async fn query_node<T: FromRedisValue>(
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
    pub(super) async fn slot_map(&self) -> Result<SlotMap, RedisError> {
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
    pub(super) async fn masters(&self) -> Result<Vec<NodeAddress>, RedisError> {
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
    async fn on_lane<T>(
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

/// Where and how to connect: `redis.url`, and for a `rediss://` URL the CA
/// of `redis.tls_ca_file` as the one trusted root when it is set (a
/// self-signed or private CA), else the public roots.
pub fn connection_info(settings: &RedisSettings) -> Result<ConnectionInfo, RedisError> {
    let info = settings.url.expose_secret().into_connection_info()?;
    if settings.tls_ca_file.is_empty() {
        return Ok(info);
    }
    let file = &settings.tls_ca_file;
    let pem = std::fs::read(file).map_err(|error| {
        RedisError::Setup(format!("cannot read redis.tls_ca_file {file}: {error}"))
    })?;
    let certificates = redis::TlsCertificates {
        client_tls: None,
        root_cert: Some(pem),
    };
    let client = redis::Client::build_with_tls(info, certificates).map_err(|error| {
        RedisError::Setup(format!(
            "redis.tls_ca_file {file} needs a rediss:// URL and a PEM certificate: {error}"
        ))
    })?;
    Ok(client.get_connection_info().clone())
}

/// Connects to the cluster: each seed node must answer (a clear error
/// names the first that does not), then the cluster connection is opened
/// and every master PINGed.
async fn connect_cluster(settings: &RedisSettings, seeds: &[String]) -> anyhow::Result<Cluster> {
    let connect_timeout = Duration::from_millis(settings.create_timeout_ms);
    let mut infos = Vec::with_capacity(seeds.len());
    for seed in seeds {
        let shown = redact_url(seed);
        let info = seed
            .as_str()
            .into_connection_info()
            .with_context(|| format!("invalid Redis Cluster node {shown}"))?;
        let client = redis::Client::open(info.clone())
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
    if !settings.tls_ca_file.is_empty() {
        let file = &settings.tls_ca_file;
        let pem =
            std::fs::read(file).with_context(|| format!("cannot read redis.tls_ca_file {file}"))?;
        builder = builder.certs(redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(pem),
        });
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
        RedisError::Setup(reason) => reason.clone(),
        RedisError::Encode(inner) => inner.to_string(),
    };
    format!("is not usable: {cause}")
}

fn describe_redis(error: &redis::RedisError) -> String {
    if error.is_connection_refusal() {
        format!("connection refused ({error})")
    } else if error.is_timeout() {
        format!("timeout ({error})")
    } else if matches!(error.kind(), redis::ErrorKind::Parse) {
        format!(
            "something answers there, but not as Redis does: another service on that port, \
             or a TLS port named with redis:// (TLS needs rediss://) ({error})"
        )
    } else if matches!(error.kind(), redis::ErrorKind::AuthenticationFailed)
        || matches!(error.code(), Some("NOAUTH" | "WRONGPASS"))
    {
        format!("authentication failed ({error})")
    } else {
        error.to_string()
    }
}
