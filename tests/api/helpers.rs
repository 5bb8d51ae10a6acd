//! Spawns the real application on a random port against a real Redis (own key
//! prefix per test) and a fresh database per test (a temporary SQLite file, or
//! a new PostgreSQL database dropped afterwards).

use std::path::PathBuf;
use std::time::Duration;

use reqwest::{Method, Response};
use secrecy::SecretString;
use serde_json::{Value, json};
use sqlx::Connection;
use user_api::config::Settings;
use user_api::repositories::sql::Database;
use user_api::startup::Application;

use crate::test_redis::{TestConnection, TestRedis, cluster_nodes, on_cluster, put_on_cluster};

pub const PASSWORD: &str = "correct horse battery";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind a free port")
        .local_addr()
        .expect("its address")
        .port()
}

pub fn test_redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/15".into())
}

fn test_postgres_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// The settings every test starts from: the repository's config files, with
/// a free port, a fresh database and a key prefix of its own.
pub fn test_settings() -> Settings {
    let config_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut settings = Settings::load(&config_dir).expect("config/ loads");
    settings.server.port = 0;
    settings.server.host = "127.0.0.1".into();
    settings.server.workers = 2;
    // Tests send bursts of hundreds of requests from one address; the
    // connection bound has tests of its own.
    settings.server.max_connections_per_client = 100_000;
    settings.auth.hash_concurrency = 2;
    settings.redis.url = SecretString::from(test_redis_url());
    settings.redis.pool_min_idle = 1;
    settings.redis.key_prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
    // Generous: rate-limit tests set their own limits.
    settings.rate_limit.requests = 1_000_000;
    settings.rate_limit.login_requests = 1_000_000;
    settings.rate_limit.register_requests = 1_000_000;
    settings.log.level = std::env::var("TEST_LOG").unwrap_or_else(|_| "error".into());
    settings
}

/// A database that exists only for one test.
pub struct TestDatabase {
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    File(PathBuf),
    Postgres { admin_url: String, name: String },
}

impl TestDatabase {
    pub async fn create(backend: Backend) -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        match backend {
            Backend::Sqlite => {
                let path = std::env::temp_dir().join(format!("user-api-test-{id}.db"));
                Self {
                    url: format!("sqlite://{}", path.display()),
                    cleanup: Cleanup::File(path),
                }
            }
            Backend::Postgres => {
                let admin_url = test_postgres_url();
                let name = format!("user_api_test_{id}");
                let mut connection = sqlx::PgConnection::connect(&admin_url)
                    .await
                    .expect("PostgreSQL answers at TEST_POSTGRES_URL");
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut connection)
                    .await
                    .expect("create the test database");
                let (base, _) = admin_url.rsplit_once('/').expect("URL has a database");
                Self {
                    url: format!("{base}/{name}"),
                    cleanup: Cleanup::Postgres { admin_url, name },
                }
            }
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::File(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            Cleanup::Postgres { admin_url, name } => {
                let (admin_url, name) = (admin_url.clone(), name.clone());
                // Drop cannot await: drop the database from a thread of its own.
                let _ = std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("runtime");
                    runtime.block_on(async {
                        if let Ok(mut connection) = sqlx::PgConnection::connect(&admin_url).await {
                            let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                            let _ = sqlx::query(&sql).execute(&mut connection).await;
                        }
                    });
                })
                .join();
            }
        }
    }
}

pub struct TestApp {
    pub address: String,
    /// `http://127.0.0.1:PORT` of the metrics listener, when one is configured.
    pub metrics_address: Option<String>,
    pub client: reqwest::Client,
    pub settings: Settings,
    pub database: Database,
    pub redis: TestRedis,
    _database_guard: TestDatabase,
}

pub struct TestUser {
    pub id: i64,
    pub token: String,
    pub refresh: String,
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

pub async fn spawn_app_with(backend: Backend, configure: impl FnOnce(&mut Settings)) -> TestApp {
    let database_guard = TestDatabase::create(backend).await;
    let mut settings = test_settings();
    settings.database.url = SecretString::from(database_guard.url.clone());
    configure(&mut settings);
    // The cluster pass puts every app on the cluster, except an app a test
    // pointed at a Redis of its own (a proxy, a server it stops).
    let own_redis = secrecy::ExposeSecret::expose_secret(&settings.redis.url) != test_redis_url();
    if on_cluster() && !own_redis {
        put_on_cluster(&mut settings, cluster_nodes());
    }
    user_api::telemetry::init(&settings.log);
    let application = Application::build(settings.clone())
        .await
        .expect("the application starts");
    let address = format!("http://127.0.0.1:{}", application.port());
    let metrics_address = application
        .metrics_port()
        .map(|port| format!("http://127.0.0.1:{port}"));
    tokio::spawn(application.run_until(std::future::pending()));
    let database = Database::connect(&settings.database)
        .await
        .expect("database");
    let redis = TestRedis::of(&settings.redis);
    TestApp {
        address,
        metrics_address,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client"),
        redis,
        settings,
        database,
        _database_guard: database_guard,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("request sent")
    }

    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.request(Method::GET, path, Some(token), None).await
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> Response {
        self.request(Method::PUT, path, Some(token), Some(body))
            .await
    }

    pub async fn post(&self, path: &str, body: Value) -> Response {
        self.request(Method::POST, path, None, Some(body)).await
    }

    pub async fn register(&self, username: &str) -> Response {
        self.post(
            "/api/v1/auth/register",
            json!({"username": username, "email": format!("{username}@example.com"), "password": PASSWORD}),
        )
        .await
    }

    pub async fn login(&self, username: &str, password: &str) -> Response {
        self.post(
            "/api/v1/auth/login",
            json!({"username": username, "password": password}),
        )
        .await
    }

    pub async fn login_token(&self, username: &str, password: &str) -> String {
        self.login_tokens(username, password).await.0
    }

    /// The access and refresh tokens of a new login.
    pub async fn login_tokens(&self, username: &str, password: &str) -> (String, String) {
        let response = self.login(username, password).await;
        assert_eq!(response.status(), 200, "login of {username}");
        let body: Value = response.json().await.expect("token JSON");
        tokens_of(&body)
    }

    /// The id of the session a live access token belongs to, as the
    /// session list reports it.
    pub async fn session_id(&self, token: &str) -> String {
        let response = self.get("/api/v1/auth/sessions", token).await;
        assert_eq!(response.status(), 200, "session list");
        let body: Value = response.json().await.expect("sessions JSON");
        body["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|session| session["current"] == true)
            .and_then(|session| session["id"].as_str())
            .expect("the current session is listed")
            .to_string()
    }

    /// Registers and logs in a user.
    pub async fn user(&self, username: &str) -> TestUser {
        let response = self.register(username).await;
        assert_eq!(response.status(), 201, "register {username}");
        let body: Value = response.json().await.expect("user JSON");
        let (token, refresh) = self.login_tokens(username, PASSWORD).await;
        TestUser {
            id: body["id"].as_i64().expect("id"),
            token,
            refresh,
        }
    }

    /// Registers a user, makes it an admin in SQL, and logs it in.
    pub async fn admin(&self, username: &str) -> TestUser {
        let user = self.user(username).await;
        let sql = "UPDATE users SET role = 'admin' WHERE id = $1";
        match &self.database {
            Database::Sqlite(pool) => sqlx::query(sql).bind(user.id).execute(pool).await.map(drop),
            Database::Postgres(pool) => {
                sqlx::query(sql).bind(user.id).execute(pool).await.map(drop)
            }
        }
        .expect("promote to admin");
        let (token, refresh) = self.login_tokens(username, PASSWORD).await;
        TestUser {
            token,
            refresh,
            ..user
        }
    }

    /// The value of one series of `/metrics`, e.g. `user_api_cache_loads_total`
    /// or `user_api_near_cache{state="hits"}`. The test fails when the
    /// series is absent: a renamed metric must not read as 0.
    pub async fn metric(&self, series: &str) -> i64 {
        let metrics = self
            .request(Method::GET, "/metrics", None, None)
            .await
            .text()
            .await
            .expect("metrics text");
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("/metrics has no series {series}:\n{metrics}"))
            .trim()
            .parse()
            .expect("a whole number")
    }

    /// Every key under this app's prefix.
    pub async fn redis_keys(&self) -> Vec<String> {
        let (redis, pattern) = (
            self.redis.clone(),
            format!("{}*", self.settings.redis.key_prefix),
        );
        tokio::task::spawn_blocking(move || redis.scan(&pattern))
            .await
            .expect("the SCAN thread")
    }

    /// Deletes every key of this app, as a Redis restarted empty would.
    pub async fn forget_redis_keys(&self) {
        let (redis, pattern) = (
            self.redis.clone(),
            format!("{}*", self.settings.redis.key_prefix),
        );
        tokio::task::spawn_blocking(move || redis.delete_matching(&pattern))
            .await
            .expect("the DEL thread");
    }

    pub async fn redis_connection(&self) -> TestConnection {
        self.redis.connection().await
    }

    pub fn on_redis_cluster(&self) -> bool {
        matches!(self.redis, TestRedis::Cluster(..))
    }

    pub fn key(&self, rest: &str) -> String {
        format!("{}{rest}", self.settings.redis.key_prefix)
    }

    pub async fn redis_get(&self, key: &str) -> Option<String> {
        redis::cmd("GET")
            .arg(key)
            .query_async(&mut self.redis_connection().await)
            .await
            .expect("GET")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Mail folders made for one test (`mailbox::mail_to_files`).
        let mail_dir = PathBuf::from(&self.settings.mail.file_dir);
        if mail_dir.starts_with(std::env::temp_dir()) {
            let _ = std::fs::remove_dir_all(mail_dir);
        }
        // Leave the shared Redis as we found it.
        self.redis
            .delete_matching(&format!("{}*", self.settings.redis.key_prefix));
    }
}

/// The `user-api` binary, configured like a test app: the repository's
/// config files, then these through the environment.
pub fn user_api_command(
    database_url: &str,
    redis_url: &str,
    key_prefix: &str,
) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_user-api"));
    command
        .arg("--config-dir")
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config"))
        .env("APP__DATABASE__URL", database_url)
        .env("APP__REDIS__URL", redis_url)
        .env("APP__REDIS__KEY_PREFIX", key_prefix)
        .env("APP__LOG__LEVEL", "warn")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    command
}

impl TestApp {
    /// The binary, on this app's database and Redis prefix.
    pub fn command(&self) -> std::process::Command {
        let mut command = user_api_command(
            secrecy::ExposeSecret::expose_secret(&self.settings.database.url),
            secrecy::ExposeSecret::expose_secret(&self.settings.redis.url),
            &self.settings.redis.key_prefix,
        );
        let cluster = secrecy::ExposeSecret::expose_secret(&self.settings.redis.cluster_nodes);
        if !cluster.is_empty() {
            command.env("APP__REDIS__CLUSTER_NODES", cluster);
        }
        command
    }
}

/// `(access_token, refresh_token)` of a `Tokens` body.
pub fn tokens_of(body: &Value) -> (String, String) {
    let field = |name: &str| body[name].as_str().expect(name).to_string();
    (field("access_token"), field("refresh_token"))
}

pub async fn error_code(response: Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("an error envelope");
    (status, body["error"].clone())
}

/// Runs each test once on SQLite and once on PostgreSQL; after `configure`,
/// with settings changed by that closure.
#[macro_export]
macro_rules! on_both_databases {
    (configure $configure:expr; $(async fn $name:ident($app:ident) $body:block)*) => {
        mod sqlite {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let $app = $crate::helpers::spawn_app_with($crate::helpers::Backend::Sqlite, $configure).await;
                    $body
                }
            )*
        }
        mod postgres {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let $app = $crate::helpers::spawn_app_with($crate::helpers::Backend::Postgres, $configure).await;
                    $body
                }
            )*
        }
    };
    ($(async fn $name:ident($app:ident) $body:block)*) => {
        $crate::on_both_databases! { configure |_| {}; $(async fn $name($app) $body)* }
    };
}
