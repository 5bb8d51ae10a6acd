//! Benchmark (not a test): how long a change stays invisible to another
//! instance's near cache. Two measurements, each printed as a JSON line:
//!
//!     near_cache_delay link REDIS_URL ROUNDS NAME
//!         A near cache and its tracking link in this process; another
//!         connection SETs a key the near cache holds: the time from sending
//!         the SET until the copy is gone.
//!     near_cache_delay http URL_A URL_B ROUNDS NAME
//!         Two running instances with the near cache on: B holds a user near,
//!         A updates it; for how long after A's 200 does B still serve the
//!         old user (0 when B's very next answer is already new).

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use user_api::config::RedisSettings;
use user_api::repositories::redis::{NearCache, TrackingLink};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let report = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["link", url, rounds, name] => link(url, rounds.parse()?, name).await?,
        ["http", a, b, rounds, name] => http(a, b, rounds.parse()?, name).await?,
        _ => bail!(
            "usage: near_cache_delay link REDIS_URL ROUNDS NAME | http URL_A URL_B ROUNDS NAME"
        ),
    };
    println!("{report}");
    Ok(())
}

fn summary(name: &str, mut delays: Vec<Duration>, extra: Value) -> Value {
    delays.sort();
    let ms = |p: f64| {
        let index = ((delays.len() as f64 * p) as usize).min(delays.len() - 1);
        delays[index].as_secs_f64() * 1e3
    };
    let mut report = json!({
        "name": name, "rounds": delays.len(),
        "p50_ms": ms(0.5), "p99_ms": ms(0.99), "max_ms": ms(1.0),
    });
    if let (Some(report), Some(extra)) = (report.as_object_mut(), extra.as_object()) {
        report.extend(extra.clone());
    }
    report
}

async fn link(url: &str, rounds: usize, name: &str) -> anyhow::Result<Value> {
    let prefix = format!("bench:near:{}:", uuid::Uuid::new_v4().simple());
    let settings = RedisSettings::for_tool(url, &prefix);
    let near = NearCache::new(1000, Duration::from_secs(60));
    let _link = TrackingLink::start(
        &settings,
        vec![prefix.clone()],
        near.clone(),
        Duration::from_millis(250),
    );
    while !near.is_serving() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut writer = redis::Client::open(url)?
        .get_multiplexed_async_connection()
        .await?;
    let key = format!("{prefix}key");
    let (mut delays, mut before_reply) = (Vec::with_capacity(rounds), 0);
    for round in 0..rounds {
        let ticket = near.ticket(&key).context("near cache serving")?;
        near.fill(ticket, &key, b"old");
        let started = Instant::now();
        let _: () = redis::cmd("SET")
            .arg(&key)
            .arg(round)
            .query_async(&mut writer)
            .await?;
        let replied = started.elapsed();
        while near.get(&key).is_some() {
            tokio::task::yield_now().await;
            if started.elapsed() > Duration::from_secs(5) {
                bail!("the invalidation never came");
            }
        }
        let dropped = started.elapsed();
        before_reply += usize::from(dropped <= replied);
        delays.push(dropped);
    }
    let _: () = redis::cmd("DEL").arg(&key).query_async(&mut writer).await?;
    Ok(summary(
        name,
        delays,
        json!({"dropped_before_the_writer_saw_its_reply": before_reply}),
    ))
}

async fn http(a: &str, b: &str, rounds: usize, name: &str) -> anyhow::Result<Value> {
    let client = reqwest::Client::new();
    let username = format!("nd{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let password = "near-cache-delay";
    let registered: Value = client
        .post(format!("{a}/api/v1/auth/register"))
        .json(&json!({"username": username, "email": format!("{username}@example.com"), "password": password}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let login: Value = client
        .post(format!("{a}/api/v1/auth/login"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let token = login["access_token"].as_str().context("a token")?;
    let path = format!("/api/v1/users/{}", registered["id"]);
    let read = async |base: &str| -> anyhow::Result<String> {
        let user: Value = client
            .get(format!("{base}{path}"))
            .bearer_auth(token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(user["username"].as_str().unwrap_or_default().to_string())
    };
    let (mut windows, mut stale_rounds, mut stale_reads) = (Vec::new(), 0, 0);
    for round in 0..rounds {
        // B reads it twice: the second read fills B's near copy if the first did not.
        for _ in 0..3 {
            read(b).await?;
        }
        let new_name = format!("{username}-{round}");
        client
            .put(format!("{a}{path}"))
            .bearer_auth(token)
            .json(&json!({ "username": new_name }))
            .send()
            .await?
            .error_for_status()?;
        let acknowledged = Instant::now();
        let mut stale = 0;
        let window = loop {
            let sent = Instant::now();
            if read(b).await? == new_name {
                break if stale == 0 {
                    Duration::ZERO
                } else {
                    sent - acknowledged
                };
            }
            stale += 1;
            if acknowledged.elapsed() > Duration::from_secs(5) {
                bail!("B never served the update");
            }
        };
        stale_rounds += usize::from(stale > 0);
        stale_reads += stale;
        windows.push(window);
    }
    Ok(summary(
        name,
        windows,
        json!({"rounds_with_a_stale_read": stale_rounds, "stale_reads": stale_reads}),
    ))
}
