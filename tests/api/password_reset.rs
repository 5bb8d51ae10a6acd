//! Password reset: the link mailed by `forgot`, single use, expiry,
//! supersession, sessions ended; the same answer and time for unknown
//! addresses; limits; and no raw token at rest in SQL or Redis.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use user_api::config::Settings;
use user_api::repositories::sql::Database;

use crate::helpers::{PASSWORD, TestApp, error_code};
use crate::mailbox::{mail_to_files, mails, wait_for};
use crate::on_both_databases;

const NEW_PASSWORD: &str = "a brand new passphrase";

async fn forgot(app: &TestApp, email: &str) -> reqwest::Response {
    app.post("/api/v1/auth/password/forgot", json!({ "email": email }))
        .await
}

async fn reset(app: &TestApp, token: &str, password: &str) -> reqwest::Response {
    app.post(
        "/api/v1/auth/password/reset",
        json!({ "token": token, "new_password": password }),
    )
    .await
}

/// The token of the `count`-th reset mail to `to`.
async fn reset_token(app: &TestApp, to: &str, count: usize) -> String {
    let mails = wait_for(app, to, "Reset your password", count).await;
    mails[count - 1].token(app, "reset-password")
}

async fn assert_invalid_token(response: reqwest::Response) {
    let (status, error) = error_code(response).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (400, Some("invalid_token"))
    );
}

async fn execute(app: &TestApp, sql: &str) {
    match &app.database {
        Database::Sqlite(pool) => sqlx::query(sql).execute(pool).await.map(drop),
        Database::Postgres(pool) => sqlx::query(sql).execute(pool).await.map(drop),
    }
    .expect(sql);
}

on_both_databases! {
    configure mail_to_files;

    async fn a_reset_link_sets_the_password_ends_every_session_and_works_once(app) {
        let alice = app.user("alice").await;
        let response = forgot(&app, "Alice@Example.com").await;
        assert_eq!(response.status(), 202);
        let mails = wait_for(&app, "alice@example.com", "Reset your password", 1).await;
        assert!(mails[0].content_type.starts_with("multipart/alternative"));
        assert!(mails[0].text.contains("for 30 minutes"), "{}", mails[0].text);
        let token = mails[0].token(&app, "reset-password");

        assert_eq!(reset(&app, &token, NEW_PASSWORD).await.status(), 204);
        assert_eq!(app.get("/api/v1/users/me", &alice.token).await.status(), 401, "the access token stopped working");
        let refreshed = app.post("/api/v1/auth/refresh", json!({"refresh_token": alice.refresh})).await;
        assert_eq!(refreshed.status(), 401, "so did the refresh token");
        assert_eq!(app.login("alice", PASSWORD).await.status(), 401);
        let token_now = app.login_token("alice", NEW_PASSWORD).await;
        assert_eq!(app.get("/api/v1/users/me", &token_now).await.status(), 200);

        assert_invalid_token(reset(&app, &token, "yet another passphrase").await).await;
        assert_eq!(app.login("alice", NEW_PASSWORD).await.status(), 200, "the reused token changed nothing");
    }

    async fn a_newer_reset_request_spends_the_older_link(app) {
        app.user("alice").await;
        assert_eq!(forgot(&app, "alice@example.com").await.status(), 202);
        let first = reset_token(&app, "alice@example.com", 1).await;
        assert_eq!(forgot(&app, "alice@example.com").await.status(), 202);
        let second = reset_token(&app, "alice@example.com", 2).await;
        assert_ne!(first, second);
        assert_invalid_token(reset(&app, &first, NEW_PASSWORD).await).await;
        assert_eq!(reset(&app, &second, NEW_PASSWORD).await.status(), 204);
    }

    async fn a_bad_new_password_answers_422_and_leaves_the_link_usable(app) {
        app.user("alice").await;
        forgot(&app, "alice@example.com").await;
        let token = reset_token(&app, "alice@example.com", 1).await;
        let (status, error) = error_code(reset(&app, &token, "short").await).await;
        assert_eq!((status, error["details"][0]["field"].as_str()), (422, Some("new_password")));
        let (status, _) = error_code(app.post("/api/v1/auth/password/reset", json!({"new_password": NEW_PASSWORD})).await).await;
        assert_eq!(status, 422);
        assert_invalid_token(reset(&app, "0123", NEW_PASSWORD).await).await;
        assert_eq!(reset(&app, &token, NEW_PASSWORD).await.status(), 204);
    }

    async fn unknown_and_disabled_addresses_get_the_same_202_and_no_mail(app) {
        let carol = app.user("carol").await;
        execute(&app, &format!("UPDATE users SET disabled = TRUE WHERE id = {}", carol.id)).await;
        app.user("alice").await;
        let unknown = forgot(&app, "nobody@example.com").await;
        let (unknown_status, unknown_body) = (unknown.status(), unknown.bytes().await.unwrap());
        let disabled = forgot(&app, "carol@example.com").await;
        let (disabled_status, disabled_body) = (disabled.status(), disabled.bytes().await.unwrap());
        let known = forgot(&app, "alice@example.com").await;
        let (known_status, known_body) = (known.status(), known.bytes().await.unwrap());
        assert_eq!([unknown_status, disabled_status, known_status].map(|s| s.as_u16()), [202, 202, 202]);
        assert_eq!(unknown_body, known_body);
        assert_eq!(disabled_body, known_body);
        reset_token(&app, "alice@example.com", 1).await;
        // Jobs may finish in any order: give the other two time to be done.
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let resets: Vec<String> = mails(&app)
            .into_iter()
            .filter(|mail| mail.subject.contains("Reset"))
            .map(|mail| mail.to)
            .collect();
        assert_eq!(resets, ["alice@example.com"]);
        let (status, error) = error_code(app.post("/api/v1/auth/password/forgot", json!({"email": "not an address"})).await).await;
        assert_eq!((status, error["details"][0]["field"].as_str()), (422, Some("email")));
    }

    async fn no_raw_token_is_at_rest_in_sql_or_redis(app) {
        app.user("alice").await;
        let verify = wait_for(&app, "alice@example.com", "Welcome", 1).await[0].token(&app, "verify-email");
        forgot(&app, "alice@example.com").await;
        let reset_link = reset_token(&app, "alice@example.com", 1).await;
        let everything = [sql_text(&app).await, redis_text(&app).await].concat();
        assert!(everything.len() > 1000, "the scan saw the stored data ({} bytes)", everything.len());
        for token in [&verify, &reset_link] {
            assert!(!everything.contains(token.as_str()), "a raw token is stored");
        }
        // The hashes are what is stored.
        for token in [&verify, &reset_link] {
            use sha2::Digest;
            let hash: String = sha2::Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
            assert!(everything.contains(&hash), "the hash of a token is stored");
        }
    }
}

/// Every row of every table, as text: the database's files for SQLite
/// (free pages and the write-ahead log included), each table's rows for
/// PostgreSQL.
async fn sql_text(app: &TestApp) -> String {
    match &app.database {
        Database::Sqlite(_) => {
            let url = secrecy::ExposeSecret::expose_secret(&app.settings.database.url);
            let path = url.trim_start_matches("sqlite://");
            ["", "-wal"]
                .iter()
                .filter_map(|suffix| std::fs::read(format!("{path}{suffix}")).ok())
                .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                .collect()
        }
        Database::Postgres(pool) => {
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'",
            )
            .fetch_all(pool)
            .await
            .unwrap();
            let mut text = String::new();
            for table in tables {
                let rows: Vec<String> =
                    sqlx::query_scalar(&format!("SELECT t::text FROM \"{table}\" t"))
                        .fetch_all(pool)
                        .await
                        .unwrap();
                text.extend(rows);
            }
            text
        }
    }
}

/// Every value under the app's key prefix, whatever its type.
async fn redis_text(app: &TestApp) -> String {
    let mut connection = app.redis_connection().await;
    let keys = app.redis_keys().await;
    let mut text = String::new();
    for key in keys {
        let kind: String = redis::cmd("TYPE")
            .arg(&key)
            .query_async(&mut connection)
            .await
            .unwrap();
        let mut command = match kind.as_str() {
            "string" => redis::cmd("GET"),
            "list" => redis::cmd("LRANGE"),
            "hash" => redis::cmd("HGETALL"),
            "set" => redis::cmd("SMEMBERS"),
            "zset" => redis::cmd("ZRANGE"),
            "stream" => redis::cmd("XRANGE"),
            _ => continue,
        };
        command.arg(&key);
        match kind.as_str() {
            "list" | "zset" => command.arg(0).arg(-1),
            "stream" => command.arg("-").arg("+"),
            _ => &mut command,
        };
        let value: redis::Value = command.query_async(&mut connection).await.unwrap();
        text.push_str(&key);
        text.push_str(&format!("{value:?}"));
    }
    text
}

mod expiry {
    use super::*;

    fn short_links(settings: &mut Settings) {
        mail_to_files(settings);
        settings.auth.reset_ttl_seconds = 3;
    }

    on_both_databases! {
        configure short_links;

        async fn a_reset_link_expires_after_reset_ttl_seconds(app) {
            app.user("alice").await;
            let asked = Instant::now();
            forgot(&app, "alice@example.com").await;
            let token = reset_token(&app, "alice@example.com", 1).await;
            tokio::time::sleep(Duration::from_millis(3200).saturating_sub(asked.elapsed())).await;
            assert_invalid_token(reset(&app, &token, NEW_PASSWORD).await).await;
            assert_eq!(app.login("alice", PASSWORD).await.status(), 200);
        }
    }
}

mod limits {
    use super::*;

    fn strict(settings: &mut Settings) {
        mail_to_files(settings);
        settings.rate_limit.login_requests = 3;
        settings.rate_limit.login_window_seconds = 60;
        settings.rate_limit.trusted_proxies = "127.0.0.1/32".into();
    }

    async fn from(app: &TestApp, client: &str, path: &str, body: Value) -> u16 {
        app.client
            .post(app.url(path))
            .header("x-forwarded-for", client)
            .json(&body)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    on_both_databases! {
        configure strict;

        async fn forgot_reset_and_verify_count_against_the_login_limit_per_client(app) {
            let client = "198.51.100.7";
            let forgot = json!({"email": "a@example.com"});
            let token = json!({"token": "0".repeat(64)});
            let reset = json!({"token": "0".repeat(64), "new_password": NEW_PASSWORD});
            assert_eq!(from(&app, client, "/api/v1/auth/password/forgot", forgot).await, 202);
            assert_eq!(from(&app, client, "/api/v1/auth/verify-email", token.clone()).await, 400);
            assert_eq!(from(&app, client, "/api/v1/auth/password/reset", reset).await, 400);
            assert_eq!(from(&app, client, "/api/v1/auth/verify-email", token.clone()).await, 429);
            let login = json!({"username": "someone", "password": PASSWORD});
            assert_eq!(from(&app, client, "/api/v1/auth/login", login).await, 429);
            assert_eq!(from(&app, "198.51.100.8", "/api/v1/auth/verify-email", token).await, 400, "another client has its own limit");
        }

        async fn forgot_is_limited_per_address_whoever_asks(app) {
            let body = json!({"email": "victim@example.com"});
            for client in ["198.51.100.1", "198.51.100.2", "198.51.100.3"] {
                assert_eq!(from(&app, client, "/api/v1/auth/password/forgot", body.clone()).await, 202);
            }
            assert_eq!(from(&app, "198.51.100.4", "/api/v1/auth/password/forgot", body).await, 429);
            let other = json!({"email": "other@example.com"});
            assert_eq!(from(&app, "198.51.100.4", "/api/v1/auth/password/forgot", other).await, 202);
        }

        async fn resend_is_limited_like_login(app) {
            let alice = app.user("alice").await;
            let mut statuses = Vec::new();
            for _ in 0..3 {
                let response = app.request(Method::POST, "/api/v1/auth/verify-email/resend", Some(&alice.token), None).await;
                statuses.push(response.status().as_u16());
            }
            // The login of `user` counted once already.
            assert_eq!(statuses, [202, 202, 429]);
        }
    }
}

mod timing {
    use super::*;

    fn median(mut samples: Vec<Duration>) -> Duration {
        samples.sort();
        samples[samples.len() / 2]
    }

    /// Medians of `rounds` forgot requests for a known and an unknown
    /// address, interleaved so that load on the machine hits both alike.
    async fn medians(app: &TestApp, rounds: usize) -> (Duration, Duration) {
        let (mut known, mut unknown) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            for (address, samples) in [
                ("alice@example.com", &mut known),
                ("nobody@example.com", &mut unknown),
            ] {
                let started = Instant::now();
                let response = forgot(app, address).await;
                samples.push(started.elapsed());
                assert_eq!(response.status(), 202, "round {round}");
            }
        }
        (median(known), median(unknown))
    }

    on_both_databases! {
        configure mail_to_files;

        async fn forgot_takes_about_as_long_for_an_unknown_address_as_for_a_known_one(app) {
            app.user("alice").await;
            medians(&app, 20).await; // warm-up: connections, caches, JIT of nothing
            // A busy shared machine can skew one series; three tries at
            // 200 interleaved samples each, and the last one must hold.
            let mut last = (Duration::ZERO, Duration::ZERO);
            for _ in 0..3 {
                last = medians(&app, 200).await;
                let (known, unknown) = last;
                let ratio = known.as_secs_f64() / unknown.as_secs_f64();
                eprintln!("forgot medians: known {known:?}, unknown {unknown:?}, ratio {ratio:.3}");
                if (0.8..=1.2).contains(&ratio) {
                    return;
                }
            }
            panic!("medians differ by more than 20%: known {:?}, unknown {:?}", last.0, last.1);
        }
    }
}
