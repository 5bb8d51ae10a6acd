//! The binary as a newcomer and an operator first meet it: its messages,
//! its command line, its logs (on a terminal, into a file, into a pipe that
//! breaks), and what it says when a URL points at the wrong place.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::child::{Running, Signal};
use crate::helpers::{free_port, test_redis_url, user_api_command};
use crate::process::wait_until_live;

/// The binary on a fresh SQLite file and the test Redis, with a key prefix
/// of its own; `info` logs in the readable format.
fn user_api(port: u16) -> (Command, PathBuf) {
    let folder =
        std::env::temp_dir().join(format!("user-api-test-{}", uuid::Uuid::new_v4().simple()));
    let prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
    let database = format!("sqlite://{}/app.db", folder.display());
    let mut command = user_api_command(&database, &test_redis_url(), &prefix);
    command
        .env("APP__SERVER__PORT", port.to_string())
        .env("APP__SERVER__WORKERS", "1")
        .env("APP__LOG__LEVEL", "info")
        .env("APP__LOG__FORMAT", "pretty")
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR");
    (command, folder)
}

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs a one-shot command to its end.
fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let (mut command, folder) = user_api(free_port());
    command.args(args).envs(env.iter().copied());
    let output = command.output().unwrap();
    let _ = std::fs::remove_dir_all(folder);
    output
}

#[test]
fn a_configuration_error_is_printed_once_in_the_settings_terms() {
    let output = run(&["migrate"], &[("APP__SERVER__PORT", "99999")]);
    assert_ne!(output.status.code(), Some(0));
    let stderr = stderr_of(&output);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("APP__SERVER__PORT"), "{stderr}");
    assert!(stderr.contains("from 0 to 65535"), "{stderr}");
}

#[test]
fn a_failing_command_prints_its_error_once() {
    let output = run(
        &["cache", "evict", "--suffix", ":1"],
        &[("APP__REDIS__URL", "redis://127.0.0.1:1/0")],
    );
    assert_ne!(output.status.code(), Some(0));
    let stderr = stderr_of(&output);
    assert_eq!(stderr.matches("connection refused").count(), 1, "{stderr}");
    assert!(
        !stderr.contains("fatal"),
        "not also as a log line: {stderr}"
    );
}

#[test]
fn create_admin_without_a_password_on_stdin_says_no_password_was_given() {
    let output = run(
        &[
            "create-admin",
            "--username",
            "root",
            "--email",
            "root@example.com",
        ],
        &[],
    );
    assert_ne!(output.status.code(), Some(0));
    let stderr = stderr_of(&output);
    assert!(stderr.contains("no password given"), "{stderr}");
    assert!(!stderr.contains("8 to 128"), "{stderr}");
}

#[test]
fn every_option_of_the_commands_has_a_help_text() {
    for (args, options) in [
        (
            vec!["create-admin", "--help"],
            vec!["--username", "--email"],
        ),
        (
            vec!["cache", "evict", "--help"],
            vec!["--suffix", "--prefix", "--dry-run"],
        ),
        (vec!["jobs", "replay-dead", "--help"], vec!["--limit"]),
    ] {
        let output = run(&args, &[]);
        assert_eq!(output.status.code(), Some(0), "{args:?}");
        let help = String::from_utf8_lossy(&output.stdout).into_owned();
        for option in options {
            let line = help
                .lines()
                .find(|line| line.trim_start().starts_with(option))
                .unwrap_or_else(|| panic!("{option} missing in {help}"));
            let text = line.trim_start().trim_start_matches(option);
            let text = text
                .trim_start()
                .trim_start_matches(|c: char| c == '<' || c.is_uppercase() || c == '>');
            assert!(
                text.split_whitespace().count() >= 2,
                "{option} has no help text: {line:?}"
            );
        }
    }
}

#[test]
fn cache_evict_without_a_selector_names_both_choices() {
    let output = run(&["cache", "evict"], &[]);
    assert_ne!(output.status.code(), Some(0));
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains("--suffix") && stderr.contains("--prefix"),
        "{stderr}"
    );
}

#[test]
fn a_redis_url_pointing_at_another_service_says_it_is_not_redis() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // An HTTP server, as on a mistyped port.
    std::thread::spawn(move || {
        for stream in listener.incoming().take(8) {
            let Ok(mut stream) = stream else { continue };
            let mut buffer = [0; 256];
            let _ = stream.read(&mut buffer);
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n");
        }
    });
    let output = run(
        &["cache", "evict", "--prefix", "user:"],
        &[("APP__REDIS__URL", &format!("redis://127.0.0.1:{port}/0"))],
    );
    assert_ne!(output.status.code(), Some(0));
    let stderr = stderr_of(&output);
    assert!(stderr.contains("not as Redis does"), "{stderr}");
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
}

#[test]
fn a_postgres_url_with_a_wrong_port_says_connection_refused_at_once() {
    let url = format!(
        "postgres://postgres:postgres@127.0.0.1:{}/postgres",
        free_port()
    );
    let started = Instant::now();
    let output = run(&["migrate"], &[("APP__DATABASE__URL", &url)]);
    assert_ne!(output.status.code(), Some(0));
    let stderr = stderr_of(&output);
    assert!(stderr.contains("connection refused"), "{stderr}");
    assert!(!stderr.contains("pool timed out"), "{stderr}");
    assert!(!stderr.contains(":postgres@"), "password masked: {stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn the_env_example_can_be_sourced_by_a_shell() {
    let root = env!("CARGO_MANIFEST_DIR");
    let output = Command::new("sh")
        .current_dir(root)
        .args([
            "-c",
            "set -a; . ./.env.example; printf '%s' \"$APP__MAIL__FROM\"",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "user-api <no-reply@example.com>"
    );
}

/// A server whose stderr is piped to the test, up and answering.
async fn serving(extra: &[(&str, &str)]) -> (Running, String, PathBuf) {
    let port = free_port();
    let (mut command, folder) = user_api(port);
    command.envs(extra.iter().copied()).stderr(Stdio::piped());
    let mut child = Running::spawn(&mut command);
    let base = format!("http://127.0.0.1:{port}");
    wait_until_live(&reqwest::Client::new(), &base, &mut child).await;
    (child, base, folder)
}

async fn stop(child: Running, folder: PathBuf) -> Output {
    child.signal(Signal::SIGTERM);
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap();
    let _ = std::fs::remove_dir_all(folder);
    output
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_logs_where_it_serves_without_colour_or_secrets_in_a_pipe() {
    let redis = crate::redis_server::RedisServer::start_with_password("s3cret-redis");
    let (child, base, folder) = serving(&[("APP__REDIS__URL", &redis.url())]).await;
    let output = stop(child, folder).await;
    assert_eq!(output.status.code(), Some(0));
    let logs = stderr_of(&output);
    assert!(
        !logs.contains('\u{1b}'),
        "no colour codes into a pipe: {logs}"
    );
    let line = logs
        .lines()
        .find(|line| line.contains("serving"))
        .unwrap_or_else(|| panic!("no start-up line in {logs}"));
    assert!(line.contains(&format!("url={base}")), "{line}");
    assert!(
        line.contains("database=\"sqlite\"") || line.contains("database=sqlite"),
        "{line}"
    );
    assert!(
        line.contains(&format!("127.0.0.1:{}", redis.port)),
        "{line}"
    );
    assert!(!logs.contains("s3cret-redis"), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_logs_round_elapsed_ms_and_every_log_line_is_one_event() {
    let (mut child, base, folder) = serving(&[("APP__MAIL__TRANSPORT", "log")]).await;
    let logs = Arc::new(Mutex::new(String::new()));
    let mut stderr = child.take_stderr().unwrap();
    let collected = logs.clone();
    std::thread::spawn(move || {
        let mut buffer = [0; 4096];
        while let Ok(read) = stderr.read(&mut buffer) {
            if read == 0 {
                break;
            }
            collected
                .lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buffer[..read]));
        }
    });
    let registered = reqwest::Client::new()
        .post(format!("{base}/api/v1/auth/register"))
        .json(&serde_json::json!({
            "username": "alice", "email": "alice@example.com", "password": crate::helpers::PASSWORD,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);
    // The worker sends the welcome mail through the log transport.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !logs.lock().unwrap().contains("mail (log transport)") {
        assert!(Instant::now() < deadline, "the mail was never logged");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop(child, folder).await;
    let logs = logs.lock().unwrap().clone();
    for line in logs.lines().filter(|line| !line.trim().is_empty()) {
        assert!(
            line.starts_with("20"),
            "every line is one event with its time: {line:?}"
        );
    }
    assert!(logs.contains("elapsed_ms="), "{logs}");
    for value in logs.split("elapsed_ms=").skip(1) {
        let number: String = value
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        let decimals = number.split('.').nth(1).map_or(0, str::len);
        assert!(decimals <= 3, "elapsed_ms={number}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_log_pipe_neither_stops_nor_wedges_the_server() {
    let (mut child, base, folder) = serving(&[]).await;
    drop(child.take_stderr()); // as `user-api 2>&1 | head -1` once head exits
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    for _ in 0..200 {
        let response = client.get(format!("{base}/health/live")).send().await;
        assert_eq!(response.expect("answered").status(), 200);
    }
    let stopped = Instant::now();
    let output = stop(child, folder).await;
    assert_eq!(
        output.status.code(),
        Some(0),
        "SIGTERM still stops it cleanly"
    );
    assert!(stopped.elapsed() < Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_reader_that_stops_reading_does_not_hold_up_requests() {
    // The pipe stays open but nobody reads it: it fills (64 KiB) after a
    // few hundred request lines; later lines are dropped.
    let (child, base, folder) = serving(&[]).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    for _ in 0..2000 {
        let response = client.get(format!("{base}/health/live")).send().await;
        assert_eq!(response.expect("answered").status(), 200);
    }
    let output = stop(child, folder).await;
    assert_eq!(output.status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_cors_preflight_is_explained_in_the_log_once_per_origin() {
    let (child, base, folder) =
        serving(&[("APP__CORS__ALLOWED_ORIGINS", "http://localhost:5173")]).await;
    let client = reqwest::Client::new();
    for origin in [
        "http://localhost:3000",
        "http://localhost:3000",
        "http://127.0.0.1:8080",
    ] {
        let response = client
            .request(reqwest::Method::OPTIONS, format!("{base}/api/v1/users/me"))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403);
    }
    let logs = stderr_of(&stop(child, folder).await);
    let hints: Vec<&str> = logs
        .lines()
        .filter(|line| line.contains("CORS preflight refused"))
        .collect();
    assert_eq!(hints.len(), 2, "{logs}");
    assert!(hints[0].contains("localhost:3000") && hints[0].contains("APP__CORS__ALLOWED_ORIGINS"));
    assert!(hints[1].contains("127.0.0.1:8080"));
}
