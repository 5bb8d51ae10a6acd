//! The service on Redis Cluster (3 masters, 3 replicas): every Redis
//! feature through `redis.cluster_nodes`, on the cluster scripts/test starts
//! (`TEST_REDIS_CLUSTER_NODES`), and a failover on a cluster of the test's
//! own.

use std::time::{Duration, Instant};

use reqwest::Method;
use secrecy::SecretString;
use serde_json::{Value, json};
use user_api::config::Settings;
use user_api::startup::Application;

use crate::helpers::{Backend, PASSWORD, TestApp, TestDatabase, spawn_app_with, test_settings};
use crate::mailbox::{mail_to_files, wait_for};
use crate::redis_cluster::RedisCluster;
use crate::test_redis::{cluster_nodes, put_on_cluster};

/// A test app on the cluster scripts/test starts, whatever the pass.
pub async fn spawn_cluster_app(backend: Backend, configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_with(backend, |settings| {
        put_on_cluster(settings, cluster_nodes());
        configure(settings);
    })
    .await
}

async fn json_of(response: reqwest::Response) -> Value {
    response.json().await.expect("JSON body")
}

/// Register, log in, read a user twice (MISS then HIT), update it under the
/// lock, read the new data, log out: every step on the cluster.
async fn accounts_users_and_sessions(backend: Backend) {
    let app = spawn_cluster_app(backend, |_| {}).await;
    let alice = app.user("alice").await;
    let path = format!("/api/v1/users/{}", alice.id);
    let first = app.get(&path, &alice.token).await;
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["x-cache"], "MISS");
    let second = app.get(&path, &alice.token).await;
    assert_eq!(second.headers()["x-cache"], "HIT");

    let updated = app
        .put(&path, &alice.token, json!({"username": "alice2"}))
        .await;
    assert_eq!(updated.status(), 200);
    let read = json_of(app.get(&path, &alice.token).await).await;
    assert_eq!(read["username"], "alice2", "no stale read after the update");

    // The keys, on the cluster, in the documented layout.
    let keys = app.redis_keys().await;
    let cache_key = app.key(&format!("cache:user:{}", alice.id));
    assert!(keys.contains(&cache_key), "{keys:?}");
    assert!(
        keys.contains(&app.key(&format!("lock:fence:{{user:{}}}", alice.id))),
        "the fence carries the user's hash tag: {keys:?}"
    );
    assert!(keys.iter().any(|key| key.starts_with(&app.key("session:"))));

    let logout = app
        .request(
            Method::POST,
            "/api/v1/auth/logout",
            Some(&alice.token),
            None,
        )
        .await;
    assert_eq!(logout.status(), 204);
    assert_eq!(app.get(&path, &alice.token).await.status(), 401);
    let again = app.login_token("alice2", PASSWORD).await;
    assert_eq!(app.get(&path, &again).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_users_and_sessions_work_on_the_cluster_on_sqlite() {
    accounts_users_and_sessions(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_users_and_sessions_work_on_the_cluster_on_postgres() {
    accounts_users_and_sessions(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_all_ends_every_session_on_every_master() {
    let app = spawn_cluster_app(Backend::Sqlite, |settings| {
        settings.auth.single_session = false;
    })
    .await;
    let bob = app.user("bob").await;
    let mut tokens = vec![bob.token.clone()];
    for _ in 0..5 {
        tokens.push(app.login_token("bob", PASSWORD).await);
    }
    let response = app
        .request(
            Method::POST,
            "/api/v1/auth/logout-all",
            Some(&bob.token),
            None,
        )
        .await;
    assert_eq!(response.status(), 204);
    for token in &tokens {
        assert_eq!(app.get("/api/v1/users/me", token).await.status(), 401);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_limit_counts_client_and_account_on_the_cluster() {
    let app = spawn_cluster_app(Backend::Sqlite, |settings| {
        settings.rate_limit.login_requests = 3;
        settings.rate_limit.login_window_seconds = 60;
    })
    .await;
    app.register("carol").await;
    for attempt in 1..=3 {
        let response = app.login("carol", "wrong password").await;
        assert_eq!(response.status(), 401, "attempt {attempt}");
    }
    let refused = app.login("carol", PASSWORD).await;
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    let keys = app.redis_keys().await;
    assert!(
        keys.iter().any(|key| key.contains("ratelimit:login-ip:"))
            && keys
                .iter()
                .any(|key| key.contains("ratelimit:login-account:")),
        "{keys:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn welcome_mails_go_through_the_queue_on_the_cluster() {
    let app = spawn_cluster_app(Backend::Sqlite, mail_to_files).await;
    for name in ["dave", "erin", "frank"] {
        assert_eq!(app.register(name).await.status(), 201);
    }
    for name in ["dave", "erin", "frank"] {
        wait_for(&app, &format!("{name}@example.com"), "Welcome", 1).await;
    }
    let admin = app.admin("root").await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let stats = json_of(app.get("/api/v1/admin/jobs/stats", &admin.token).await).await;
        if stats["delivered"].as_u64() >= Some(4) {
            assert_eq!(stats["dead"], 0, "{stats}");
            break;
        }
        assert!(Instant::now() < deadline, "{stats}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let keys = app.redis_keys().await;
    assert!(
        keys.contains(&app.key("jobs:{default}:stream")),
        "the queue's keys share the tag {{default}}: {keys:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eviction_preview_and_stats_cover_every_master() {
    let app = spawn_cluster_app(Backend::Sqlite, |_| {}).await;
    eviction_and_stats_cover_every_master(&app).await;
}

/// Passwords as for a single Redis: on a cluster whose nodes all ask for
/// one, readiness, sessions, the cache, and eviction and stats over every
/// master work; a wrong password stops the start with a clear error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_with_a_password_serves_everything_and_a_wrong_one_stops_the_start() {
    let cluster =
        tokio::task::spawn_blocking(|| RedisCluster::start_with_password(17030, "cluster-secret"))
            .await
            .unwrap();
    let app = app_on(&cluster).await;
    let ready = app.request(Method::GET, "/health/ready", None, None).await;
    assert_eq!(ready.status(), 200);
    eviction_and_stats_cover_every_master(&app).await;

    let database = TestDatabase::create(Backend::Sqlite).await;
    let mut settings = test_settings();
    settings.database.url = SecretString::from(database.url.clone());
    settings.redis.cluster_nodes =
        SecretString::from(cluster.seeds().replace("cluster-secret", "wrong-secret"));
    let error = match Application::build(settings).await {
        Ok(_) => panic!("started with a wrong cluster password"),
        Err(error) => format!("{error:#}"),
    };
    assert!(
        !error.contains("wrong-secret"),
        "the password is not shown: {error}"
    );
    assert!(
        error.contains("127.0.0.1:1703"),
        "the node is named: {error}"
    );
    assert!(
        error.to_lowercase().contains("pass"),
        "the cause is said: {error}"
    );
}

async fn eviction_and_stats_cover_every_master(app: &TestApp) {
    let admin = app.admin("root").await;
    let mut ids = Vec::new();
    for index in 0..24 {
        let response = app.register(&format!("user{index}")).await;
        ids.push(json_of(response).await["id"].as_i64().unwrap());
    }
    for id in &ids {
        let response = app.get(&format!("/api/v1/users/{id}"), &admin.token).await;
        assert_eq!(response.status(), 200);
    }
    // The 24 cached users are spread over the three masters.
    let stats = json_of(app.get("/api/v1/admin/cache/stats", &admin.token).await).await;
    assert_eq!(stats["keys"], 24, "{stats}");
    let preview = json_of(
        app.get(
            "/api/v1/admin/cache/keys?prefix=user:&limit=100",
            &admin.token,
        )
        .await,
    )
    .await;
    assert_eq!(preview["count"], 24, "{preview}");

    let one = app
        .request(
            Method::DELETE,
            &format!("/api/v1/admin/cache/keys?suffix=:{}", ids[0]),
            Some(&admin.token),
            None,
        )
        .await;
    assert_eq!(json_of(one).await["deleted"], 1);
    let all = app
        .request(
            Method::DELETE,
            "/api/v1/admin/cache/keys?prefix=user:",
            Some(&admin.token),
            None,
        )
        .await;
    assert_eq!(json_of(all).await["deleted"], 23);
    let keys = app.redis_keys().await;
    assert!(
        !keys.iter().any(|key| key.starts_with(&app.key("cache:"))),
        "{keys:?}"
    );
    assert!(
        keys.iter().any(|key| key.starts_with(&app.key("session:"))),
        "sessions are never evicted"
    );
    let stats = json_of(app.get("/api/v1/admin/cache/stats", &admin.token).await).await;
    assert_eq!(stats["keys"], 0, "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_evicts_on_the_cluster() {
    let app = spawn_cluster_app(Backend::Sqlite, |_| {}).await;
    let user = app.user("gina").await;
    app.get(&format!("/api/v1/users/{}", user.id), &user.token)
        .await;
    let output = app
        .command()
        .args(["cache", "evict", "--prefix", "user:"])
        .output()
        .expect("user-api runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("deleted 1 keys"), "{stdout}");
    assert_eq!(
        app.redis_get(&app.key(&format!("cache:user:{}", user.id)))
            .await,
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_reports_the_cluster_state() {
    let app = spawn_cluster_app(Backend::Sqlite, |_| {}).await;
    let response = app.request(Method::GET, "/health/ready", None, None).await;
    assert_eq!(response.status(), 200);
    let body = json_of(response).await;
    assert_eq!(body["checks"]["redis"], "ok", "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_near_cache_steps_aside_and_nothing_stale_is_served() {
    let app = spawn_cluster_app(Backend::Sqlite, |settings| {
        settings.cache.near_enabled = true;
    })
    .await;
    let admin = app.admin("root").await;
    let user = app.user("hank").await;
    let path = format!("/api/v1/users/{}", user.id);
    for round in 0..5 {
        let name = format!("hank{round}");
        let response = app
            .put(&path, &admin.token, json!({"username": name}))
            .await;
        assert_eq!(response.status(), 200);
        for _ in 0..3 {
            let read = json_of(app.get(&path, &user.token).await).await;
            assert_eq!(read["username"], name.as_str());
        }
    }
    assert_eq!(app.metric("user_api_near_cache{state=\"hits\"}").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_seed_node_is_named_at_start() {
    let database = TestDatabase::create(Backend::Sqlite).await;
    let mut settings = test_settings();
    settings.database.url = SecretString::from(database.url.clone());
    settings.redis.cluster_nodes =
        SecretString::from(format!("{},127.0.0.1:17099", cluster_nodes()));
    let error = match Application::build(settings).await {
        Ok(_) => panic!("started with a seed node that does not answer"),
        Err(error) => format!("{error:#}"),
    };
    assert!(error.contains("127.0.0.1:17099"), "{error}");
}

/// What one request of the load saw: when it started (from the test's
/// start), its status, how long it took.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Duration,
    status: u16,
    took: Duration,
}

/// Users each read and updated by one task of their own (no two tasks
/// touch one user, so no 409 is expected), until `stop`.
async fn run_load(
    app: &TestApp,
    tasks: usize,
    users_per_task: usize,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    start: Instant,
) -> Vec<tokio::task::JoinHandle<Vec<Sample>>> {
    let mut handles = Vec::new();
    for task in 0..tasks {
        let mut users = Vec::new();
        for index in 0..users_per_task {
            users.push(app.user(&format!("load{task}x{index}")).await);
        }
        let (client, base, stop) = (app.client.clone(), app.address.clone(), stop.clone());
        handles.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut round = 0usize;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let user = &users[round % users.len()];
                let url = format!("{base}/api/v1/users/{}", user.id);
                let begun = Instant::now();
                let request = if round % 8 == 7 {
                    client.put(&url).bearer_auth(&user.token).json(
                        &json!({"username": format!("l{task}x{}r{round}", round % users.len())}),
                    )
                } else {
                    client.get(&url).bearer_auth(&user.token)
                };
                let status = request
                    .send()
                    .await
                    .map_or(0, |response| response.status().as_u16());
                samples.push(Sample {
                    at: begun - start,
                    status,
                    took: begun.elapsed(),
                });
                round += 1;
            }
            samples
        }));
    }
    handles
}

async fn collect(handles: Vec<tokio::task::JoinHandle<Vec<Sample>>>) -> Vec<Sample> {
    let mut samples = Vec::new();
    for handle in handles {
        samples.extend(handle.await.expect("load task"));
    }
    samples.sort_by_key(|sample| sample.at);
    samples
}

async fn app_on(cluster: &RedisCluster) -> TestApp {
    app_on_with(cluster, |_| {}).await
}

async fn app_on_with(cluster: &RedisCluster, configure: impl FnOnce(&mut Settings)) -> TestApp {
    let seeds = cluster.seeds();
    spawn_app_with(Backend::Sqlite, |settings| {
        put_on_cluster(settings, seeds);
        configure(settings);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_master_killed_costs_at_most_503s_and_service_is_back_within_10_s() {
    let mut cluster = tokio::task::spawn_blocking(|| RedisCluster::start(17010))
        .await
        .unwrap();
    let app = app_on(&cluster).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let start = Instant::now();
    let handles = run_load(&app, 4, 6, stop.clone(), start).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let victim = cluster.masters()[0].clone();
    let killed_at = start.elapsed();
    cluster.kill(victim.port);
    tokio::time::sleep(Duration::from_secs(12)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let samples = collect(handles).await;
    for second in 0..16 {
        let in_second: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.at.as_secs() == second)
            .collect();
        let slowest = in_second.iter().map(|s| s.took).max();
        let statuses: std::collections::BTreeMap<u16, usize> =
            in_second.iter().fold(Default::default(), |mut counts, s| {
                *counts.entry(s.status).or_default() += 1;
                counts
            });
        eprintln!("second {second}: {statuses:?}, slowest {slowest:?} (kill at {killed_at:?})");
    }
    let before: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.at + s.took < killed_at)
        .collect();
    assert!(!before.is_empty());
    let early: Vec<&&Sample> = before.iter().filter(|s| s.status != 200).collect();
    assert!(early.is_empty(), "before the kill: {early:?}");
    for sample in &samples {
        // 409 (with Retry-After): a user's lock taken just before the kill
        // could not be released then, and is held until its lease ends.
        assert!(
            [200, 503, 409].contains(&sample.status),
            "only 200, 503 or 409 while a master fails over: {sample:?}"
        );
        assert!(
            sample.took <= Duration::from_secs(2),
            "no request waits more than 2 s: {sample:?}"
        );
    }
    let back = killed_at + Duration::from_secs(10);
    let after: Vec<&Sample> = samples.iter().filter(|s| s.at >= back).collect();
    assert!(
        after.len() > 20,
        "load ran after the failover: {}",
        after.len()
    );
    assert!(
        after.iter().all(|s| s.status == 200),
        "service is back within 10 s of the kill: {:?}",
        after.iter().filter(|s| s.status != 200).collect::<Vec<_>>()
    );
    let failed = samples.iter().filter(|s| s.status == 503).count();
    let last_503 = samples
        .iter()
        .filter(|s| s.status == 503)
        .map(|s| s.at)
        .max();
    eprintln!(
        "failover of {victim:?}: {} requests, {failed} answered 503, the last {:?} after the kill",
        samples.len(),
        last_503.map(|at| at.saturating_sub(killed_at))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_live_resharding_fails_no_request() {
    let cluster = tokio::task::spawn_blocking(|| RedisCluster::start(17020))
        .await
        .unwrap();
    // What is tested is that redirections (MOVED, ASK) fail nothing. On two
    // cores shared with six nodes, redis-cli migrating keys and the other
    // tests, a node can stall past the default 300 ms bound (CI saw two 503s
    // at 302 ms); that bound's 503 is tested elsewhere (faults::).
    let app = app_on_with(&cluster, |settings| {
        settings.redis.operation_timeout_ms = 1000
    })
    .await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let start = Instant::now();
    let handles = run_load(&app, 4, 6, stop.clone(), start).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let masters = cluster.masters();
    let (from, to) = (masters[0].clone(), masters[1].clone());
    let moved = tokio::task::spawn_blocking(move || {
        let output = cluster.reshard(&from, &to, 3000);
        (cluster, output)
    })
    .await
    .unwrap();
    let (cluster, output) = moved;
    assert!(
        output.status.success(),
        "reshard: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let samples = collect(handles).await;
    assert!(samples.len() > 50, "load ran: {}", samples.len());
    let failed: Vec<&Sample> = samples.iter().filter(|s| s.status != 200).collect();
    assert!(
        failed.is_empty(),
        "failed during the resharding: {failed:?}"
    );
    assert!(samples.iter().all(|s| s.took <= Duration::from_secs(2)));
    // The moved slots belong to the new master now.
    assert_eq!(cluster.masters().len(), 3);
}
