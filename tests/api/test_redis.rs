//! The Redis a test app runs on, as the test itself sees it: one server, or
//! the Redis Cluster when `TEST_ON_REDIS_CLUSTER=1` (scripts/test's cluster
//! pass runs the Redis-touching tests that way). Tests read, scan and clean
//! up keys through it without caring which.

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};
use secrecy::{ExposeSecret, SecretString};
use user_api::config::{RedisSettings, Settings};

/// Puts an app on the cluster of `seeds`; its single-Redis URL points where
/// nothing answers, which proves it unused.
pub fn put_on_cluster(settings: &mut Settings, seeds: String) {
    settings.redis.cluster_nodes = SecretString::from(seeds);
    settings.redis.url = SecretString::from("redis://127.0.0.1:1/0".to_string());
}

/// Whether this run puts every test app on the cluster.
pub fn on_cluster() -> bool {
    std::env::var("TEST_ON_REDIS_CLUSTER").is_ok_and(|value| value == "1")
}

/// The seed nodes of the test cluster (scripts/test starts one).
pub fn cluster_nodes() -> String {
    std::env::var("TEST_REDIS_CLUSTER_NODES").expect(
        "TEST_REDIS_CLUSTER_NODES names no Redis Cluster: run the tests with scripts/test, \
         which starts one on ports 17000-17005",
    )
}

// One per test app: its size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub enum TestRedis {
    Single(redis::Client),
    /// The client, and the `user:password@` of the seeds (empty without).
    Cluster(ClusterClient, String),
}

/// A connection of either kind; commands and pipelines go through it as
/// through the crate's own connections (`query_async(&mut connection)`).
#[derive(Clone)]
pub enum TestConnection {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl ConnectionLike for TestConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            TestConnection::Single(connection) => connection.req_packed_command(cmd),
            TestConnection::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            TestConnection::Single(connection) => {
                connection.req_packed_commands(pipeline, offset, count)
            }
            TestConnection::Cluster(connection) => {
                connection.req_packed_commands(pipeline, offset, count)
            }
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            TestConnection::Single(connection) => connection.get_db(),
            TestConnection::Cluster(connection) => connection.get_db(),
        }
    }
}

impl TestRedis {
    /// The Redis of these settings: the cluster when seeds are set.
    pub fn of(settings: &RedisSettings) -> Self {
        let seeds = settings.cluster_seeds();
        let Some(first) = seeds.first() else {
            let url = settings.url.expose_secret();
            return TestRedis::Single(redis::Client::open(url).expect("a Redis URL"));
        };
        let auth = first
            .split_once("://")
            .and_then(|(_, rest)| rest.split_once('@'))
            .map_or(String::new(), |(auth, _)| format!("{auth}@"));
        TestRedis::Cluster(ClusterClient::new(seeds).expect("a cluster client"), auth)
    }

    pub async fn connection(&self) -> TestConnection {
        match self {
            TestRedis::Single(client) => TestConnection::Single(
                client
                    .get_multiplexed_async_connection()
                    .await
                    .expect("redis connection"),
            ),
            TestRedis::Cluster(client, _) => TestConnection::Cluster(
                client
                    .get_async_connection()
                    .await
                    .expect("cluster connection"),
            ),
        }
    }

    /// The servers that hold keys: the one Redis, or every master.
    fn key_holders(&self) -> redis::RedisResult<Vec<redis::Client>> {
        match self {
            TestRedis::Single(client) => Ok(vec![client.clone()]),
            TestRedis::Cluster(client, auth) => {
                let nodes: String = redis::cmd("CLUSTER")
                    .arg("NODES")
                    .query(&mut client.get_connection()?)?;
                masters_of(&nodes)
                    .map(|address| redis::Client::open(format!("redis://{auth}{address}")))
                    .collect()
            }
        }
    }

    /// Every key matching `pattern`, each once, by SCAN on every server
    /// that holds keys: never KEYS, which holds up the Redis every test
    /// shares while it walks all of its keys.
    pub fn scan(&self, pattern: &str) -> Vec<String> {
        let mut keys = Vec::new();
        for server in self.key_holders().expect("the Redis servers") {
            let mut connection = server.get_connection().expect("redis connection");
            keys.extend(scan_keys_blocking(&mut connection, pattern).expect("SCAN"));
        }
        keys.sort_unstable();
        keys.dedup();
        keys
    }

    /// Deletes every key matching `pattern`, ignoring failures (for `Drop`:
    /// leave the shared Redis as the test found it, as far as it can).
    pub fn delete_matching(&self, pattern: &str) {
        let Ok(servers) = self.key_holders() else {
            return;
        };
        for server in servers {
            let Ok(mut connection) = server.get_connection() else {
                continue;
            };
            let Ok(keys) = scan_keys_blocking(&mut connection, pattern) else {
                continue;
            };
            // One DEL per key: on a cluster node, a multi-key DEL across
            // slots is refused.
            let mut pipeline = redis::pipe();
            for key in &keys {
                pipeline.del(key).ignore();
            }
            let _: redis::RedisResult<()> = pipeline.query(&mut connection);
        }
    }
}

/// `host:port` of every master that is not failed, from `CLUSTER NODES`.
fn masters_of(nodes: &str) -> impl Iterator<Item = &str> {
    nodes.lines().filter_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let flags = fields.get(2)?;
        let is_live_master = flags.contains("master") && !flags.contains("fail");
        let address = fields.get(1)?.split('@').next()?;
        is_live_master.then_some(address)
    })
}

/// Every key matching `pattern` on one server, each once.
pub fn scan_keys_blocking(
    connection: &mut redis::Connection,
    pattern: &str,
) -> redis::RedisResult<Vec<String>> {
    let mut keys = redis::Commands::scan_match::<_, String>(connection, pattern)?
        .collect::<redis::RedisResult<Vec<String>>>()?;
    keys.sort_unstable();
    keys.dedup();
    Ok(keys)
}
