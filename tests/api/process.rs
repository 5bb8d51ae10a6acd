//! The binary as an operator runs it: start-up failures and SIGTERM.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::child::{Running, Signal};
use crate::helpers::{PASSWORD, free_port, test_redis_url, user_api_command};
use crate::redis_server::RedisServer;

fn user_api(port: u16, redis_url: &str, database: &Path) -> Command {
    let prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
    let mut command = user_api_command(
        &format!("sqlite://{}", database.display()),
        redis_url,
        &prefix,
    );
    command
        .env("APP__SERVER__PORT", port.to_string())
        .env("APP__SERVER__WORKERS", "2")
        .stdout(Stdio::null());
    command
}

fn temp_database() -> PathBuf {
    std::env::temp_dir().join(format!(
        "user-api-test-{}/app.db",
        uuid::Uuid::new_v4().simple()
    ))
}

pub async fn wait_until_live(client: &reqwest::Client, base: &str, child: &mut Running) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(response) = client.get(format!("{base}/health/live")).send().await
            && response.status() == 200
        {
            return;
        }
        assert!(child.try_wait().is_none(), "user-api exited early");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("user-api did not become live");
}

async fn stop_with(signal: Signal) {
    let port = free_port();
    let database = temp_database();
    let mut child = Running::spawn(&mut user_api(port, &test_redis_url(), &database));
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    wait_until_live(&client, &base, &mut child).await;
    assert!(
        database.exists(),
        "the SQLite file and its folder are created"
    );

    // Registrations hash passwords on two threads: several are in flight when
    // the signal arrives.
    let in_flight: Vec<_> = (0..8)
        .map(|n| {
            let request = client.post(format!("{base}/api/v1/auth/register")).json(&json!({
                "username": format!("user{n}"), "email": format!("user{n}@example.com"), "password": PASSWORD,
            }));
            tokio::spawn(request.send())
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(30)).await;
    let stopped = Instant::now();
    child.signal(signal);
    for request in in_flight {
        let response = request
            .await
            .unwrap()
            .expect("an in-flight request is answered");
        assert_eq!(response.status(), 201);
    }
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap();
    assert!(stopped.elapsed() < Duration::from_secs(10));
    assert_eq!(exit.code(), Some(0));
    let _ = std::fs::remove_dir_all(database.parent().unwrap());
}

#[tokio::test]
async fn sigterm_lets_in_flight_requests_finish_and_exits_0() {
    stop_with(Signal::SIGTERM).await;
}

#[tokio::test]
async fn sigint_is_as_graceful_as_sigterm() {
    stop_with(Signal::SIGINT).await;
}

#[tokio::test]
async fn production_refuses_the_default_or_a_short_jwt_secret() {
    for secret in [None, Some("too-short")] {
        let database = temp_database();
        let mut command = user_api(free_port(), &test_redis_url(), &database);
        command.env("APP_ENVIRONMENT", "production");
        if let Some(secret) = secret {
            command.env("APP__AUTH__JWT_SECRET", secret);
        }
        let output = command.output().unwrap();
        assert_ne!(output.status.code(), Some(0));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("JWT secret"), "{stderr}");
        assert!(!database.exists(), "refused before touching anything");
    }
}

#[tokio::test]
async fn an_unreachable_redis_stops_start_up_with_a_clear_message_and_no_password() {
    let database = temp_database();
    let output = user_api(
        free_port(),
        "redis://:hunter2secret@127.0.0.1:1/0",
        &database,
    )
    .output()
    .unwrap();
    assert_ne!(output.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("connection refused"), "{stderr}");
    assert!(stderr.contains("127.0.0.1:1"), "{stderr}");
    assert!(!stderr.contains("hunter2secret"), "{stderr}");
    let _ = std::fs::remove_dir_all(database.parent().unwrap());
}

#[tokio::test]
async fn migrate_applies_the_migrations_and_exits() {
    let database = temp_database();
    let output = user_api(free_port(), &test_redis_url(), &database)
        .arg("migrate")
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(database.exists());
    let _ = std::fs::remove_dir_all(database.parent().unwrap());
}

/// The variables of `.env.example`, as compose hands them to the container
/// once the operator has set the JWT secret (production refuses the
/// placeholder).
fn env_example() -> Vec<(String, String)> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".env.example");
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.split_once('='))
        // As compose reads it: surrounding quotes are not part of the value.
        .map(|(name, value)| (name.to_string(), value.trim_matches('"').to_string()))
        .map(|(name, value)| match name.as_str() {
            "APP__AUTH__JWT_SECRET" => (name, "a-secret-the-operator-set-of-over-32-bytes".into()),
            _ => (name, value),
        })
        .collect()
}

#[tokio::test]
async fn the_binary_runs_as_the_container_does() {
    let redis = RedisServer::start_with_password("s3cret-redis");
    let database = crate::helpers::TestDatabase::create(crate::helpers::Backend::Postgres).await;
    let port = free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_user-api"));
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .envs(env_example())
        // What compose.yaml and the Dockerfile set for the api service:
        .env("APP_ENVIRONMENT", "production")
        .env("APP__SERVER__PORT", port.to_string())
        .env("APP__DATABASE__URL", &database.url)
        .env("APP__REDIS__URL", redis.url())
        .env("APP__WORKER__ENABLED", "false")
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = Running::spawn(&mut command);
    let healthy = |port: u16| {
        Command::new(env!("CARGO_BIN_EXE_user-api"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("APP_ENVIRONMENT", "production")
            .envs(env_example())
            .env("APP__SERVER__PORT", port.to_string())
            .arg("healthcheck")
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !healthy(port) {
        assert!(
            Instant::now() < deadline,
            "the container's HEALTHCHECK never passed"
        );
        assert!(child.try_wait().is_none(), "user-api exited");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let ready = client
        .get(format!("{base}/health/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let registered = client
        .post(format!("{base}/api/v1/auth/register"))
        .json(&json!({"username": "alice", "email": "alice@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);
    child.signal(Signal::SIGTERM);
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let logs = String::from_utf8_lossy(&output.stderr);
    let first = logs.lines().next().unwrap_or_default();
    assert!(
        serde_json::from_str::<serde_json::Value>(first).is_ok(),
        "production logs are JSON: {first}"
    );
    assert!(
        !logs.contains("s3cret-redis") && !logs.contains(PASSWORD),
        "no secrets in logs"
    );
    assert!(!healthy(port), "HEALTHCHECK fails once stopped");
}

#[tokio::test]
async fn a_wrong_redis_password_stops_start_up_saying_so() {
    let redis = RedisServer::start_with_password("the-right-one");
    let database = temp_database();
    let url = format!("redis://:the-wrong-one@127.0.0.1:{}/0", redis.port);
    let output = user_api(free_port(), &url, &database).output().unwrap();
    assert_ne!(output.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("authentication"), "{stderr}");
    assert!(!stderr.contains("the-wrong-one"), "{stderr}");
    let _ = std::fs::remove_dir_all(database.parent().unwrap());
}

#[tokio::test]
async fn malformed_requests_are_not_logged_as_errors() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let port = free_port();
    let database = temp_database();
    let mut child =
        Running::spawn(user_api(port, &test_redis_url(), &database).env("APP__LOG__LEVEL", "info"));
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    wait_until_live(&client, &base, &mut child).await;
    let malformed: [&[u8]; 4] = [
        b"GARBAGE\r\n\r\n",
        b"GET /health/live HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n",
        b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ];
    for request in malformed {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        stream.write_all(request).await.unwrap();
        let mut reply = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut reply)).await;
        assert!(
            reply.starts_with(b"HTTP/1.1 4"),
            "{}",
            String::from_utf8_lossy(&reply)
        );
    }
    let bad_json = client
        .post(format!("{base}/api/v1/auth/login"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_json.status(), 422);
    child.signal(Signal::SIGTERM);
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(log.contains("request finished"), "the log is there: {log}");
    let errors: Vec<_> = log.lines().filter(|line| line.contains("ERROR")).collect();
    assert!(
        errors.is_empty(),
        "client mistakes logged as errors: {errors:#?}"
    );
    let _ = std::fs::remove_dir_all(database.parent().unwrap());
}
