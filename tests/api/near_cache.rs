//! The near cache (`cache.near_enabled`): served from the process, yet a
//! change made through any instance, or straight in Redis, reaches every
//! other instance's copy within moments; when the link that carries those
//! changes drops or hangs, the copy is flushed and bypassed.

use std::time::{Duration, Instant};

use secrecy::SecretString;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, TestUser, spawn_app_with};
use crate::on_both_databases;
use crate::redis_server::RedisServer;

const HITS: &str = r#"user_api_near_cache{state="hits"}"#;
const FLUSHES: &str = r#"user_api_near_cache{state="flushes"}"#;
const LINK_UP: &str = r#"user_api_near_cache{state="link_up"}"#;

/// A second instance with the near cache on, sharing `app`'s database and Redis.
async fn other_instance(app: &TestApp) -> TestApp {
    let settings = app.settings.clone();
    spawn_app_with(Backend::Sqlite, move |own| {
        own.database.url = settings.database.url;
        own.redis = settings.redis;
        own.cache.near_enabled = true;
    })
    .await
}

async fn wait_for_link(app: &TestApp) {
    let started = Instant::now();
    while app.metric(LINK_UP).await != 1 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the tracking link comes up"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Reads the user until both its session and its entry come from the near cache.
async fn warm(app: &TestApp, path: &str, token: &str) {
    for _ in 0..50 {
        let hits = app.metric(HITS).await;
        assert_eq!(app.get(path, token).await.status(), 200);
        if app.metric(HITS).await >= hits + 2 {
            return;
        }
    }
    panic!("{path} never came from the near cache");
}

/// Polls until `done` holds, for at most a second; returns how long it took.
async fn within_a_second(mut done: impl AsyncFnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !done().await {
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "not within a second"
        );
    }
    started.elapsed()
}

fn near_on(settings: &mut user_api::config::Settings) {
    settings.cache.near_enabled = true;
}

on_both_databases! {
    configure near_on;

    async fn repeated_reads_are_served_from_the_near_cache(app) {
        wait_for_link(&app).await;
        let alice = app.user("alice").await;
        let path = format!("/api/v1/users/{}", alice.id);
        warm(&app, &path, &alice.token).await;
        let response = app.get(&path, &alice.token).await;
        assert_eq!(response.headers()["x-cache"], "HIT");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["username"], "alice");
    }

    async fn an_update_on_one_instance_reaches_the_near_cache_of_another(app) {
        let other = other_instance(&app).await;
        wait_for_link(&app).await;
        wait_for_link(&other).await;
        let alice = app.user("alice").await;
        let path = format!("/api/v1/users/{}", alice.id);
        warm(&other, &path, &alice.token).await;
        let response = app.put(&path, &alice.token, json!({"username": "alice2"})).await;
        assert_eq!(response.status(), 200);
        let took = within_a_second(async || {
            let body: Value = other.get(&path, &alice.token).await.json().await.unwrap();
            body["username"] == "alice2"
        })
        .await;
        eprintln!("the other instance served the update {took:?} after the 200");
        // The writer's own copy went at once.
        let body: Value = app.get(&path, &alice.token).await.json().await.unwrap();
        assert_eq!(body["username"], "alice2");
    }

    async fn a_logout_on_one_instance_ends_the_session_on_another(app) {
        let other = other_instance(&app).await;
        wait_for_link(&other).await;
        let alice = app.user("alice").await;
        let path = format!("/api/v1/users/{}", alice.id);
        warm(&other, &path, &alice.token).await;
        let logout = app
            .request(reqwest::Method::POST, "/api/v1/auth/logout", Some(&alice.token), None)
            .await;
        assert_eq!(logout.status(), 204);
        // The instance that logged out refuses the token at once.
        assert_eq!(app.get(&path, &alice.token).await.status(), 401);
        within_a_second(async || other.get(&path, &alice.token).await.status() == 401).await;
    }

    async fn a_new_login_ends_the_old_token_on_an_instance_that_holds_it_near(app) {
        wait_for_link(&app).await;
        let alice = app.user("alice").await;
        let path = format!("/api/v1/users/{}", alice.id);
        warm(&app, &path, &alice.token).await;
        let _new_token = app.login_token("alice", crate::helpers::PASSWORD).await;
        assert_eq!(app.get(&path, &alice.token).await.status(), 401);
        assert_eq!(app.get("/api/v1/users/me", &alice.token).await.status(), 401);
    }

    async fn an_admin_eviction_drops_the_near_copies_too(app) {
        wait_for_link(&app).await;
        let admin = app.admin("root").await;
        let alice = app.user("alice").await;
        let path = format!("/api/v1/users/{}", alice.id);
        warm(&app, &path, &alice.token).await;
        let evicted = app
            .request(
                reqwest::Method::DELETE,
                &format!("/api/v1/admin/cache/keys?suffix=:{}", alice.id),
                Some(&admin.token),
                None,
            )
            .await;
        assert_eq!(evicted.status(), 200);
        let response = app.get(&path, &alice.token).await;
        assert_eq!(response.headers()["x-cache"], "MISS");
    }
}

/// An app with the near cache on, on a Redis server of the test's own,
/// and a user it holds near: (app, the user, the user's path).
async fn warm_app_on_own_redis(redis: &RedisServer) -> (TestApp, TestUser, String) {
    let url = redis.url();
    let app = spawn_app_with(Backend::Sqlite, |settings| {
        settings.redis.url = SecretString::from(url);
        settings.cache.near_enabled = true;
    })
    .await;
    wait_for_link(&app).await;
    let alice = app.user("alice").await;
    let path = format!("/api/v1/users/{}", alice.id);
    warm(&app, &path, &alice.token).await;
    (app, alice, path)
}

async fn tracking_client_id(app: &TestApp) -> i64 {
    let clients: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut app.redis_connection().await)
        .await
        .unwrap();
    let name = format!(
        "name={}",
        user_api::repositories::redis::TRACKING_CLIENT_NAME
    );
    clients
        .lines()
        .find(|line| line.split(' ').any(|field| field == name))
        .and_then(|line| line.strip_prefix("id="))
        .and_then(|rest| rest.split(' ').next())
        .expect("the tracking link is connected")
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_made_while_the_link_is_down_is_never_served_from_the_near_cache() {
    let redis = RedisServer::start();
    let (app, alice, path) = warm_app_on_own_redis(&redis).await;
    let sid = app.session_id(&alice.token).await;
    let flushes = app.metric(FLUSHES).await;
    let mut connection = app.redis_connection().await;
    let id = tracking_client_id(&app).await;
    let _: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(id)
        .query_async(&mut connection)
        .await
        .unwrap();
    within_a_second(async || app.metric(FLUSHES).await > flushes).await;
    // Ended behind the app's back while nobody was listening for changes.
    let _: i64 = redis::cmd("DEL")
        .arg(app.key(&format!("session:{sid}")))
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(app.get(&path, &alice.token).await.status(), 401);
    // A new link comes up and the near cache serves again.
    wait_for_link(&app).await;
    let bob = app.user("bob").await;
    warm(&app, &format!("/api/v1/users/{}", bob.id), &bob.token).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_redis_makes_the_near_cache_step_aside_and_sessions_fail_closed() {
    let redis = RedisServer::start();
    let (app, alice, path) = warm_app_on_own_redis(&redis).await;
    redis.pause();
    // The heartbeat (250 ms, answered within the 300 ms operation timeout)
    // notices; until then the copy is as fresh as Redis, which cannot change.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let started = Instant::now();
    let status = app.get(&path, &alice.token).await.status();
    assert_eq!(status, 503, "sessions fail closed");
    assert!(started.elapsed() < Duration::from_secs(1));
    redis.resume();
    let recovered = Instant::now();
    while app.get(&path, &alice.token).await.status() != 200 {
        assert!(recovered.elapsed() < Duration::from_secs(5), "recovers");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_for_link(&app).await;
}
