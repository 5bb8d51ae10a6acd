//! Benchmark (not a test): evict 100,000 cache keys by prefix while another
//! client GETs from the same Redis, and report how long the eviction took and
//! the longest that client waited.
//!
//!     cargo run --release --example eviction_latency [-- KEYS]
//!
//! Uses BENCH_REDIS_URL (default redis://127.0.0.1:6379/14) and a key prefix
//! of its own, which it removes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use user_api::config::RedisSettings;
use user_api::metrics::Metrics;
use user_api::repositories::redis::{KeyScanner, Keys, NearCache, RedisClient};
use user_api::services::cache::CacheCounters;
use user_api::services::cache_admin::{CacheAdminService, Selector};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let count: usize = std::env::args().nth(1).map_or(Ok(100_000), |n| n.parse())?;
    let url =
        std::env::var("BENCH_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/14".into());
    let prefix = format!("bench:{}:", uuid::Uuid::new_v4().simple());
    let settings = RedisSettings::for_tool(&url, &prefix);
    let client = RedisClient::connect(&settings).await?;
    let keys = Keys::new(&prefix);
    let mut connection = redis::Client::open(url.as_str())?
        .get_multiplexed_async_connection()
        .await?;
    for start in (0..count).step_by(10_000) {
        let mut pipe = redis::pipe();
        for n in start..(start + 10_000).min(count) {
            pipe.cmd("SET")
                .arg(format!("{}user:{n}", keys.cache_namespace()))
                .arg("{\"id\":1}")
                .ignore();
        }
        let _: () = pipe.query_async(&mut connection).await?;
    }
    let probe_key = format!("{prefix}session:user:1");
    let _: () = redis::cmd("SET")
        .arg(&probe_key)
        .arg("x")
        .query_async(&mut connection)
        .await?;

    // The probe: a separate connection doing GETs back to back.
    let stop = Arc::new(AtomicBool::new(false));
    let probe = {
        let stop = stop.clone();
        let mut connection = connection.clone();
        tokio::spawn(async move {
            let mut waits = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let _: Option<String> = redis::cmd("GET")
                    .arg(&probe_key)
                    .query_async(&mut connection)
                    .await
                    .ok()
                    .flatten();
                waits.push(started.elapsed());
            }
            waits
        })
    };
    let service = CacheAdminService::new(
        KeyScanner::new(client),
        keys.clone(),
        CacheCounters::new(&Metrics::new()?),
        300,
        NearCache::new(1, Duration::from_secs(1)),
    );
    let started = Instant::now();
    let deleted = service.evict(&Selector::Prefix("user:".into())).await?;
    let took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let mut waits = probe.await?;
    waits.sort();
    let percentile = |p: f64| waits[((waits.len() as f64 * p) as usize).min(waits.len() - 1)];
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("| keys | deleted | eviction | probe GETs | probe p50 | probe p99 | probe max |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    println!(
        "| {count} | {deleted} | {:.0} ms | {} | {:.3} ms | {:.3} ms | {:.3} ms |",
        ms(took),
        waits.len(),
        ms(percentile(0.5)),
        ms(percentile(0.99)),
        ms(*waits.last().unwrap_or(&Duration::ZERO))
    );
    let _: () = redis::cmd("DEL")
        .arg(format!("{prefix}session:user:1"))
        .query_async(&mut connection)
        .await?;
    Ok(())
}
