//! Prometheus metrics of one process. Built once at start-up; counters are
//! bumped where things happen, gauges of pools and queues are read when
//! `/metrics` is scraped.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    /// Cache-aside reads by result: hit, miss, bypass (Redis failed).
    pub cache_reads: IntCounterVec,
    /// Loads from SQL after cache misses (one per key at a time).
    pub cache_loads: IntCounter,
    /// Rate-limit decisions by limit (api, login) and decision (allowed, denied).
    pub rate_limit: IntCounterVec,
    /// Updates refused because another held the lock.
    pub lock_contention: IntCounter,
    /// Pool connections by pool (redis, database) and state.
    pub pool_connections: IntGaugeVec,
    /// Jobs by state (pending, in_flight, delayed, dead, outbox) and the
    /// queue's totals (retried, delivered).
    pub jobs: IntGaugeVec,
    /// The near cache: entries, link_up, and its totals (hits, misses,
    /// invalidations, flushes).
    pub near_cache: IntGaugeVec,
}

impl Metrics {
    pub fn new() -> anyhow::Result<Self> {
        let registry = Registry::new_custom(Some("user_api".into()), None)?;
        let http_requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests by route and status"),
            &["method", "route", "status"],
        )?;
        let http_duration = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency").buckets(
                vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                ],
            ),
            &["method", "route"],
        )?;
        let cache_reads = IntCounterVec::new(
            Opts::new("cache_reads_total", "Cache-aside reads by result"),
            &["result"],
        )?;
        let cache_loads =
            IntCounter::new("cache_loads_total", "Loads from SQL after cache misses")?;
        let rate_limit = IntCounterVec::new(
            Opts::new("rate_limit_decisions_total", "Rate-limit decisions"),
            &["limit", "decision"],
        )?;
        let lock_contention =
            IntCounter::new("lock_contention_total", "Updates refused: lock held")?;
        let pool_connections = IntGaugeVec::new(
            Opts::new("pool_connections", "Connection pool use"),
            &["pool", "state"],
        )?;
        let jobs = IntGaugeVec::new(Opts::new("jobs", "Job queue depth and totals"), &["state"])?;
        let near_cache = IntGaugeVec::new(
            Opts::new("near_cache", "Near cache size, link state and totals"),
            &["state"],
        )?;
        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(http_duration.clone()))?;
        registry.register(Box::new(cache_reads.clone()))?;
        registry.register(Box::new(cache_loads.clone()))?;
        registry.register(Box::new(rate_limit.clone()))?;
        registry.register(Box::new(lock_contention.clone()))?;
        registry.register(Box::new(pool_connections.clone()))?;
        registry.register(Box::new(jobs.clone()))?;
        registry.register(Box::new(near_cache.clone()))?;
        Ok(Self {
            registry,
            http_requests,
            http_duration,
            cache_reads,
            cache_loads,
            rate_limit,
            lock_contention,
            pool_connections,
            jobs,
            near_cache,
        })
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        if let Err(error) = TextEncoder::new().encode(&self.registry.gather(), &mut buffer) {
            tracing::warn!(error = %error, "encoding metrics failed");
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}
