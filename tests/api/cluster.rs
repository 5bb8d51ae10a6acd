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

/// The seed nodes of the test cluster (scripts/test starts one).
pub fn cluster_nodes() -> String {
    std::env::var("TEST_REDIS_CLUSTER_NODES").expect(
        "TEST_REDIS_CLUSTER_NODES names no Redis Cluster: run the tests with scripts/test, \
         which starts one on ports 17000-17005",
    )
}

pub async fn spawn_cluster_app(
    backend: Backend,
    configure: impl FnOnce(&mut Settings),
) -> ClusterApp {
    let nodes = cluster_nodes();
    let app = spawn_app_with(backend, |settings| {
        settings.redis.cluster_nodes = SecretString::from(nodes.clone());
        // The single Redis is not used: a URL where nothing answers proves it.
        settings.redis.url = SecretString::from("redis://127.0.0.1:1/0".to_string());
        configure(settings);
    })
    .await;
    let cluster = redis::cluster::ClusterClient::new(
        nodes
            .split(',')
            .map(|node| format!("redis://{node}"))
            .collect::<Vec<_>>(),
    )
    .expect("cluster client");
    ClusterApp { app, cluster }
}

/// A test app on the cluster, and a cluster client of the test's own to
/// look at the keys; the app's keys are deleted afterwards.
pub struct ClusterApp {
    pub app: TestApp,
    cluster: redis::cluster::ClusterClient,
}

impl std::ops::Deref for ClusterApp {
    type Target = TestApp;
    fn deref(&self) -> &TestApp {
        &self.app
    }
}

impl ClusterApp {
    async fn connection(&self) -> redis::cluster_async::ClusterConnection {
        self.cluster
            .get_async_connection()
            .await
            .expect("cluster connection")
    }

    /// Every key of this app, over every master.
    pub async fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", self.settings.redis.key_prefix))
            .query_async(&mut self.connection().await)
            .await
            .expect("KEYS on every master");
        keys.sort();
        keys
    }

    pub async fn redis_value(&self, key: &str) -> Option<String> {
        redis::cmd("GET")
            .arg(key)
            .query_async(&mut self.connection().await)
            .await
            .expect("GET")
    }
}

impl Drop for ClusterApp {
    fn drop(&mut self) {
        let (cluster, prefix) = (self.cluster.clone(), self.settings.redis.key_prefix.clone());
        let _ = std::thread::spawn(move || {
            let Ok(mut connection) = cluster.get_connection() else {
                return;
            };
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{prefix}*"))
                .query(&mut connection)
                .unwrap_or_default();
            for key in keys {
                let _: Result<(), _> = redis::cmd("DEL").arg(key).query(&mut connection);
            }
        })
        .join();
    }
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
    let keys = app.keys().await;
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
    let keys = app.keys().await;
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
    let keys = app.keys().await;
    assert!(
        keys.contains(&app.key("jobs:{default}:stream")),
        "the queue's keys share the tag {{default}}: {keys:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eviction_preview_and_stats_cover_every_master() {
    let app = spawn_cluster_app(Backend::Sqlite, |_| {}).await;
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
    let keys = app.keys().await;
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
        .env("APP__REDIS__CLUSTER_NODES", cluster_nodes())
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
        app.redis_value(&app.key(&format!("cache:user:{}", user.id)))
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
