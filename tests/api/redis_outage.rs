//! Redis is a cache: when it hangs or dies, sessions fail closed with 503
//! within a bound, nothing answers 500, and everything recovers without a
//! restart. (A slow Redis, where the session check still answers, sends
//! cache misses straight to SQL: see `faults`.)

use std::time::{Duration, Instant};

use reqwest::Method;
use secrecy::SecretString;
use serde_json::Value;

use crate::helpers::{Backend, PASSWORD, TestApp, TestUser, error_code, spawn_app_with, tokens_of};
use crate::redis_server::RedisServer;

/// Well under a second: the operation timeout (300 ms) plus the SQL read.
const BOUND: Duration = Duration::from_millis(800);

async fn app_on(redis: &RedisServer, backend: Backend) -> TestApp {
    let url = redis.url();
    spawn_app_with(backend, |settings| {
        settings.redis.url = SecretString::from(url)
    })
    .await
}

async fn cached_user(app: &TestApp) -> (TestUser, String, Value) {
    let alice = app.user("alice").await;
    let path = format!("/api/v1/users/{}", alice.id);
    let body: Value = app.get(&path, &alice.token).await.json().await.unwrap();
    assert_eq!(
        app.get(&path, &alice.token).await.headers()["x-cache"],
        "HIT"
    );
    (alice, path, body)
}

/// While Redis is unusable: reads from SQL in bounded time, 503 for sessions.
async fn assert_degraded(app: &TestApp, alice: &TestUser, path: &str) {
    for _ in 0..3 {
        let started = Instant::now();
        let response = app.get(path, &alice.token).await;
        // The bearer check needs Redis, so this read is refused...
        assert_eq!(response.status(), 503);
        assert!(
            started.elapsed() < BOUND,
            "answered in {:?}",
            started.elapsed()
        );
    }
    let started = Instant::now();
    let (status, error) = error_code(app.get("/api/v1/users/me", &alice.token).await).await;
    assert_eq!((status, error["code"].as_str()), (503, Some("unavailable")));
    assert!(started.elapsed() < BOUND);
    let (status, _) = error_code(app.login("alice", PASSWORD).await).await;
    assert_eq!(status, 503, "login fails closed");
    let ready = app.request(Method::GET, "/health/ready", None, None).await;
    assert_eq!(ready.status(), 503);
    assert_ne!(
        ready.json::<Value>().await.unwrap()["checks"]["redis"],
        "ok"
    );
}

async fn eventually_ok(app: &TestApp, token: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let status = app.get("/api/v1/users/me", token).await.status();
        if status == 200 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not recovered within 5 s (last status {status})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn a_hung_redis_degrades_then_recovers(backend: Backend) {
    let redis = RedisServer::start();
    let app = app_on(&redis, backend).await;
    let (alice, path, _) = cached_user(&app).await;
    redis.pause();
    assert_degraded(&app, &alice, &path).await;
    redis.resume();
    eventually_ok(&app, &alice.token).await;
    assert_eq!(app.get(&path, &alice.token).await.status(), 200);
}

async fn a_dead_redis_degrades_and_after_an_empty_restart_a_refresh_restores_the_session(
    backend: Backend,
) {
    let mut redis = RedisServer::start();
    let app = app_on(&redis, backend).await;
    let (alice, path, body) = cached_user(&app).await;
    redis.stop();
    assert_degraded(&app, &alice, &path).await;
    redis.restart();
    // The Redis side of the session went with the data: 401, not 500...
    let deadline = Instant::now() + Duration::from_secs(5);
    while app.get("/api/v1/users/me", &alice.token).await.status() != 401 {
        assert!(Instant::now() < deadline, "no recovery after restart");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // ...but not the session itself: a refresh brings it back from SQL.
    let refreshed = refresh(&app, &alice.refresh).await;
    assert_eq!(refreshed.status(), 200);
    let (token, _) = tokens_of(&refreshed.json().await.unwrap());
    let response = app.get(&path, &token).await;
    assert_eq!(response.headers()["x-cache"], "MISS");
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        body,
        "no user lost"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_redis_degrades_then_recovers_on_sqlite() {
    a_hung_redis_degrades_then_recovers(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_redis_degrades_then_recovers_on_postgres() {
    a_hung_redis_degrades_then_recovers(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_redis_degrades_and_after_an_empty_restart_a_refresh_restores_the_session_on_sqlite()
{
    a_dead_redis_degrades_and_after_an_empty_restart_a_refresh_restores_the_session(
        Backend::Sqlite,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_redis_degrades_and_after_an_empty_restart_a_refresh_restores_the_session_on_postgres()
 {
    a_dead_redis_degrades_and_after_an_empty_restart_a_refresh_restores_the_session(
        Backend::Postgres,
    )
    .await;
}

async fn refresh(app: &TestApp, refresh_token: &str) -> reqwest::Response {
    app.post(
        "/api/v1/auth/refresh",
        serde_json::json!({"refresh_token": refresh_token}),
    )
    .await
}

/// While Redis is down a refresh answers 503 and spends nothing, and a
/// login ends no session: the same token works once Redis is back, even
/// after the reuse grace has passed.
async fn a_refresh_during_a_redis_outage_is_503_and_loses_no_session(backend: Backend) {
    let redis = RedisServer::start();
    let app = spawn_app_with(backend, |settings| {
        settings.redis.url = SecretString::from(redis.url());
        settings.auth.refresh_reuse_grace_seconds = 0;
    })
    .await;
    let alice = app.user("alice").await;
    redis.pause();
    for _ in 0..3 {
        let started = Instant::now();
        let (status, error) = error_code(refresh(&app, &alice.refresh).await).await;
        assert_eq!((status, error["code"].as_str()), (503, Some("unavailable")));
        assert!(
            started.elapsed() < BOUND,
            "answered in {:?}",
            started.elapsed()
        );
    }
    // Nor does a login end her other session while Redis cannot record
    // the new one (single login).
    let login = app.login("alice", PASSWORD).await;
    assert_eq!(login.status(), 503);
    redis.resume();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let response = loop {
        let response = refresh(&app, &alice.refresh).await;
        if response.status() != 503 || Instant::now() > deadline {
            break response;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(response.status(), 200, "the session survived the outage");
    let (token, _) = tokens_of(&response.json().await.unwrap());
    assert_eq!(app.get("/api/v1/users/me", &token).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_during_a_redis_outage_is_503_and_loses_no_session_on_sqlite() {
    a_refresh_during_a_redis_outage_is_503_and_loses_no_session(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_during_a_redis_outage_is_503_and_loses_no_session_on_postgres() {
    a_refresh_during_a_redis_outage_is_503_and_loses_no_session(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_costs_at_most_one_failed_request() {
    let mut redis = RedisServer::start();
    let app = app_on(&redis, Backend::Sqlite).await;
    let alice = app.user("alice").await;
    let admin = app.admin("root").await;
    // Connections on every worker thread, all broken at once by the restart.
    for _ in 0..20 {
        assert_eq!(
            app.get("/api/v1/users/me", &alice.token).await.status(),
            200
        );
    }
    redis.restart();
    let mut statuses = Vec::new();
    for _ in 0..10 {
        statuses.push(
            app.get("/api/v1/users/me", &admin.token)
                .await
                .status()
                .as_u16(),
        );
    }
    // The restart emptied Redis: the session is gone (401); one request may
    // meet a broken connection first (503); the others know to reconnect.
    let failed = statuses.iter().filter(|status| **status == 503).count();
    assert!(failed <= 1, "{statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|status| *status == 401 || *status == 503),
        "{statuses:?}"
    );
}
