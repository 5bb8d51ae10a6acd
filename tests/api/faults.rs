//! Fault injection: Redis slow or hung under load, PostgreSQL cut off or
//! its table locked. Nothing answers 500, nothing waits past its bound, and
//! everything recovers without a restart.

use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use sqlx::Connection;

use crate::fault_proxy::FaultProxy;
use crate::helpers::{Backend, TestApp, TestUser, spawn_app_with};
use crate::redis_server::RedisServer;

/// `count` concurrent GETs of a user: each one's status and time.
async fn burst(app: &TestApp, user: &TestUser, count: usize) -> Vec<(u16, Duration)> {
    let url = app.url(&format!("/api/v1/users/{}", user.id));
    let requests = (0..count).map(|_| {
        let request = app.client.get(&url).bearer_auth(&user.token);
        async move {
            let started = Instant::now();
            let status = request.send().await.unwrap().status().as_u16();
            (status, started.elapsed())
        }
    });
    futures_util::future::join_all(requests).await
}

async fn app_behind_redis_proxy() -> (RedisServer, FaultProxy, TestApp) {
    let redis = RedisServer::start();
    let proxy = FaultProxy::start(redis.port).await;
    let url = format!("redis://127.0.0.1:{}/0", proxy.port);
    let app = spawn_app_with(Backend::Sqlite, |settings| {
        settings.redis.url = SecretString::from(url)
    })
    .await;
    (redis, proxy, app)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_redis_keeps_every_answer_within_a_second() {
    let (_redis, proxy, app) = app_behind_redis_proxy().await;
    let alice = app.user("alice").await;
    proxy.delay(Duration::from_millis(200));
    let results = burst(&app, &alice, 20).await;
    for (status, took) in &results {
        assert!(*status == 200 || *status == 503, "status {status}");
        assert!(*took < Duration::from_secs(1), "waited {took:?}");
    }
    let slowest = results
        .iter()
        .map(|(_, took)| *took)
        .max()
        .unwrap_or_default();
    eprintln!(
        "slow Redis: the slowest of {} answers took {slowest:?}",
        results.len()
    );
    proxy.pass();
    assert!(
        burst(&app, &alice, 10)
            .await
            .iter()
            .all(|(status, _)| *status == 200)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_redis_under_load_costs_each_request_under_a_second_and_recovers() {
    let (_redis, proxy, app) = app_behind_redis_proxy().await;
    let alice = app.user("alice").await;
    proxy.blackhole();
    let hung_until = Instant::now() + Duration::from_secs(10);
    let (mut answered, mut slowest) = (0, Duration::ZERO);
    while Instant::now() < hung_until {
        for (status, took) in burst(&app, &alice, 20).await {
            assert_eq!(status, 503, "sessions fail closed");
            assert!(took < Duration::from_secs(1), "waited {took:?}");
            (answered, slowest) = (answered + 1, slowest.max(took));
        }
    }
    eprintln!("Redis hung 10 s: {answered} answers, the slowest in {slowest:?}");
    proxy.pass();
    let back = Instant::now();
    loop {
        if burst(&app, &alice, 5)
            .await
            .iter()
            .all(|(status, _)| *status == 200)
        {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(5),
            "no recovery within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn postgres_port(url: &str) -> u16 {
    url.rsplit_once('@')
        .and_then(|(_, rest)| rest.split(['/', ':']).nth(1))
        .and_then(|port| port.parse().ok())
        .unwrap_or(5432)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_cut_off_answers_503_in_time_and_every_request_succeeds_after() {
    let database = crate::helpers::TestDatabase::create(Backend::Postgres).await;
    let port = postgres_port(&database.url).await;
    let proxy = FaultProxy::start(port).await;
    let via_proxy = database
        .url
        .replacen(&format!(":{port}/"), &format!(":{}/", proxy.port), 1);
    let app = spawn_app_with(Backend::Sqlite, |settings| {
        settings.database.url = SecretString::from(via_proxy);
        settings.database.acquire_timeout_ms = 1000;
    })
    .await;
    let alice = app.user("alice").await;
    proxy.cut();
    let started = Instant::now();
    let response = app.register("bobby").await;
    assert_eq!(response.status(), 503);
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "took {:?}",
        started.elapsed()
    );
    proxy.pass();
    let mut ok = 0;
    for n in 0..100 {
        let body = json!({"username": format!("after{n}")});
        let path = format!("/api/v1/users/{}", alice.id);
        ok += usize::from(app.put(&path, &alice.token, body).await.status() == 200);
    }
    assert_eq!(ok, 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_users_table_answers_503_in_time_and_leaks_no_connection() {
    let app = spawn_app_with(Backend::Postgres, |settings| {
        settings.database.acquire_timeout_ms = 1000;
        settings.database.statement_timeout_ms = 1000;
    })
    .await;
    let alice = app.user("alice").await;
    let url = app.settings.database.url.expose_secret().to_string();
    let mut locker = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut locker).await.unwrap();
    sqlx::query("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        .execute(&mut locker)
        .await
        .unwrap();
    let started = Instant::now();
    let blocked = app
        .put(
            &format!("/api/v1/users/{}", alice.id),
            &alice.token,
            json!({"username": "alice2"}),
        )
        .await;
    assert_eq!(blocked.status(), 503);
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "took {:?}",
        started.elapsed()
    );
    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();
    for n in 0..100 {
        let path = format!("/api/v1/users/{}", alice.id);
        assert_eq!(
            app.put(&path, &alice.token, json!({"username": format!("a{n}xx")}))
                .await
                .status(),
            200
        );
    }
    let name = url.rsplit_once('/').unwrap().1.to_string();
    let connections: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = $1")
            .bind(&name)
            .fetch_one(&mut locker)
            .await
            .unwrap();
    // The app's pools (server and test helper) plus this connection.
    let limit = i64::from(app.settings.database.max_connections) * 2 + 1;
    assert!(connections <= limit, "{connections} connections open");
}
