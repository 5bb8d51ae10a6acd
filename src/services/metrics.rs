//! `/metrics`: the process's counters, plus pool and queue gauges read at
//! scrape time.

use std::sync::Arc;
use std::time::Duration;

use super::jobs::JobService;
use crate::metrics::Metrics;
use crate::repositories::redis::{NearCache, RedisClient};
use crate::repositories::sql::Database;

#[derive(Clone)]
pub struct MetricsService {
    metrics: Arc<Metrics>,
    database: Database,
    redis: RedisClient,
    jobs: JobService,
    near_cache: Arc<NearCache>,
}

impl MetricsService {
    pub fn new(
        metrics: Arc<Metrics>,
        database: Database,
        redis: RedisClient,
        jobs: JobService,
        near_cache: Arc<NearCache>,
    ) -> Self {
        Self {
            metrics,
            database,
            redis,
            jobs,
            near_cache,
        }
    }

    pub async fn render(&self) -> String {
        let pools = &self.metrics.pool_connections;
        let (size, idle, waiting) = self.redis.pool_status();
        pools
            .with_label_values(&["redis", "in_use"])
            .set(size.saturating_sub(idle) as i64);
        pools.with_label_values(&["redis", "idle"]).set(idle as i64);
        pools
            .with_label_values(&["redis", "waiting"])
            .set(waiting as i64);
        let (size, idle) = self.database.pool_status();
        pools
            .with_label_values(&["database", "in_use"])
            .set(i64::from(size) - idle as i64);
        pools
            .with_label_values(&["database", "idle"])
            .set(idle as i64);
        let near = self.near_cache.stats();
        for (state, value) in [
            ("entries", near.entries as u64),
            ("link_up", u64::from(near.link_up)),
            ("hits", near.hits),
            ("misses", near.misses),
            ("invalidations", near.invalidations),
            ("flushes", near.flushes),
        ] {
            self.metrics
                .near_cache
                .with_label_values(&[state])
                .set(value as i64);
        }
        // Queue gauges need Redis and SQL: bounded, and left as they were
        // when those do not answer.
        if let Ok(Ok(stats)) =
            tokio::time::timeout(Duration::from_secs(1), self.jobs.counts()).await
        {
            let jobs = &self.metrics.jobs;
            for (state, value) in [
                ("pending", stats.queue.pending),
                ("in_flight", stats.queue.in_flight),
                ("delayed", stats.queue.delayed),
                ("dead", stats.queue.dead),
                ("outbox", stats.outbox),
                ("retried", stats.queue.retried),
                ("delivered", stats.queue.delivered),
            ] {
                jobs.with_label_values(&[state]).set(value as i64);
            }
        }
        self.metrics.render()
    }
}
