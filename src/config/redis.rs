//! Where Redis is: one server or a cluster's seeds, and the pools' limits.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::redact_url;

#[derive(Debug, Clone, Deserialize)]
pub struct RedisSettings {
    pub url: SecretString,
    /// Redis Cluster seed nodes, comma-separated (`host:port` or
    /// `redis://[user:password@]host:port`, `rediss://` for TLS). When set,
    /// everything runs on that cluster and `url` is not used.
    #[serde(default)]
    pub cluster_nodes: SecretString,
    /// PEM file of the CA that signed a `rediss://` server's certificate,
    /// when it is not a public one; empty: the public roots.
    pub tls_ca_file: String,
    pub key_prefix: String,
    pub pool_max_size: usize,
    pub pool_min_idle: usize,
    /// Pooled connections that requests share (multiplexed).
    pub lanes: usize,
    pub wait_timeout_ms: u64,
    pub create_timeout_ms: u64,
    pub recycle_timeout_ms: u64,
    pub operation_timeout_ms: u64,
}

impl RedisSettings {
    pub fn operation_timeout(&self) -> Duration {
        Duration::from_millis(self.operation_timeout_ms)
    }

    /// The Redis Cluster seed nodes as URLs (`host:port` becomes
    /// `redis://host:port`); empty for a single Redis.
    pub fn cluster_seeds(&self) -> Vec<String> {
        self.cluster_nodes
            .expose_secret()
            .split(',')
            .map(str::trim)
            .filter(|node| !node.is_empty())
            .map(|node| {
                if node.contains("://") {
                    node.to_string()
                } else {
                    format!("redis://{node}")
                }
            })
            .collect()
    }

    /// Where Redis is, for logs: the single URL or the cluster's seeds,
    /// passwords hidden.
    pub fn shown(&self) -> String {
        let seeds = self.cluster_seeds();
        if seeds.is_empty() {
            redact_url(self.url.expose_secret())
        } else {
            let seeds: Vec<String> = seeds.iter().map(|seed| redact_url(seed)).collect();
            format!("cluster {}", seeds.join(","))
        }
    }

    /// Settings for a tool (a benchmark, an example) on a local Redis:
    /// small pools, generous timeouts.
    pub fn for_tool(url: &str, key_prefix: &str) -> Self {
        Self {
            url: SecretString::from(url.to_string()),
            cluster_nodes: SecretString::from(String::new()),
            tls_ca_file: String::new(),
            key_prefix: key_prefix.to_string(),
            pool_max_size: 4,
            pool_min_idle: 1,
            lanes: 2,
            wait_timeout_ms: 1000,
            create_timeout_ms: 1000,
            recycle_timeout_ms: 1000,
            operation_timeout_ms: 5000,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::load::test_support::load;

    #[test]
    fn cluster_nodes_take_both_forms_and_hide_passwords() {
        let settings = load(&[(
            "APP__REDIS__CLUSTER_NODES",
            " 10.0.0.1:7000, redis://u:pw@10.0.0.2:7001 ,",
        )])
        .unwrap();
        assert_eq!(
            settings.redis.cluster_seeds(),
            ["redis://10.0.0.1:7000", "redis://u:pw@10.0.0.2:7001"]
        );
        assert_eq!(
            settings.redis.shown(),
            "cluster redis://10.0.0.1:7000,redis://u:***@10.0.0.2:7001"
        );
        assert!(load(&[]).unwrap().redis.cluster_seeds().is_empty());
    }
}
