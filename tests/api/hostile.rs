//! Hostile clients: forged tokens, racing logins and logouts, account
//! enumeration by answer or by timing, mass assignment.

use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::helpers::{Backend, PASSWORD, TestApp, spawn_app};
use crate::on_both_databases;

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn sign(app: &TestApp, claims: &Value) -> String {
    let secret = app.settings.auth.jwt_secret.expose_secret().as_bytes();
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap()
}

fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// The id of the token's session, for claims that must otherwise be valid.
async fn session_of(app: &TestApp, token: &str) -> String {
    app.session_id(token).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_expired_and_malformed_tokens_all_get_401_and_never_a_5xx() {
    let app = spawn_app(Backend::Sqlite).await;
    let alice = app.user("alice").await;
    let sid = session_of(&app, &alice.token).await;
    let valid = json!({"sub": alice.id.to_string(), "exp": now() + 600, "iat": now(), "jti": "any", "sid": sid, "role": "user"});
    assert_eq!(
        app.get("/api/v1/users/me", &sign(&app, &valid))
            .await
            .status(),
        200,
        "the control case"
    );

    let (header, _) = alice.token.split_once('.').unwrap();
    let mut edited = valid.clone();
    edited["role"] = json!("admin");
    let edited_payload = base64url(edited.to_string().as_bytes());
    let signature = alice.token.rsplit_once('.').unwrap().1;
    let none_header = base64url(br#"{"alg":"none","typ":"JWT"}"#);
    let wrong_key = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &valid,
        &EncodingKey::from_secret(b"another-secret-of-at-least-32-bytes!!"),
    )
    .unwrap();
    let with = |change: &dyn Fn(&mut Value)| {
        let mut claims = valid.clone();
        change(&mut claims);
        sign(&app, &claims)
    };
    let forged = [
        (
            "alg none",
            format!("{none_header}.{}.", base64url(valid.to_string().as_bytes())),
        ),
        ("wrong key", wrong_key),
        (
            "payload edited to admin",
            format!("{header}.{edited_payload}.{signature}"),
        ),
        ("expired", with(&|c| c["exp"] = json!(now() - 60))),
        (
            "nbf in the future",
            with(&|c| c["nbf"] = json!(now() + 3600)),
        ),
        (
            "exp as a string",
            with(&|c| c["exp"] = json!((now() + 600).to_string())),
        ),
        (
            "no jti",
            with(&|c| {
                c.as_object_mut().unwrap().remove("jti");
            }),
        ),
        (
            "another session",
            with(&|c| c["sid"] = json!("0123456789abcdef0123456789abcdef")),
        ),
        (
            "no session",
            with(&|c| {
                c.as_object_mut().unwrap().remove("sid");
            }),
        ),
        (
            "another user's session",
            with(&|c| c["sub"] = json!((alice.id + 1).to_string())),
        ),
        (
            "issued in the future",
            with(&|c| c["iat"] = json!(now() + 3600)),
        ),
        (
            "no exp",
            with(&|c| {
                c.as_object_mut().unwrap().remove("exp");
            }),
        ),
        ("sub not a number", with(&|c| c["sub"] = json!("alice"))),
        (
            "100 KB",
            format!("{}.{}.x", "a".repeat(50_000), "b".repeat(50_000)),
        ),
        ("empty", String::new()),
    ];
    for (what, token) in forged {
        let response = app
            .client
            .get(app.url("/api/v1/users/me"))
            .header("authorization", format!("Bearer {token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{what}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized", "{what}");
    }
}

on_both_databases! {
    async fn tokens_of_deleted_users_and_after_logout_or_password_change_are_refused(app) {
        let alice = app.user("alice").await;
        app.request(Method::POST, "/api/v1/auth/logout", Some(&alice.token), None).await;
        assert_eq!(app.get("/api/v1/users/me", &alice.token).await.status(), 401);

        let bob = app.user("bobby").await;
        let change = json!({"current_password": PASSWORD, "new_password": "another long secret"});
        app.request(Method::PUT, "/api/v1/auth/password", Some(&bob.token), Some(change)).await;
        assert_eq!(app.get("/api/v1/users/me", &bob.token).await.status(), 401);

        let carol = app.user("carol").await;
        let path = format!("/api/v1/users/{}", carol.id);
        assert_eq!(app.request(Method::DELETE, &path, Some(&carol.token), None).await.status(), 204);
        for (method, body) in [(Method::GET, None), (Method::PUT, Some(json!({"username": "carol2"}))), (Method::DELETE, None)] {
            assert_eq!(app.request(method, &path, Some(&carol.token), body).await.status(), 401);
        }
    }

    async fn twenty_concurrent_logins_of_one_user_leave_exactly_one_valid_token(app) {
        app.register("alice").await;
        let logins = (0..20).map(|_| app.login_token("alice", PASSWORD));
        let tokens = futures_util::future::join_all(logins).await;
        let mut valid = 0;
        for token in &tokens {
            valid += usize::from(app.get("/api/v1/users/me", token).await.status() == 200);
        }
        assert_eq!(valid, 1);
    }

    async fn a_logout_racing_a_new_login_never_ends_the_new_session(app) {
        app.register("alice").await;
        for _ in 0..5 {
            let old = app.login_token("alice", PASSWORD).await;
            let logout = app.request(Method::POST, "/api/v1/auth/logout", Some(&old), None);
            let (_, new) = tokio::join!(logout, app.login_token("alice", PASSWORD));
            assert_eq!(app.get("/api/v1/users/me", &new).await.status(), 200);
        }
    }
}

/// Everything a client sees but the parts that differ by nature.
async fn observable(response: reqwest::Response) -> (u16, Vec<(String, String)>, Value) {
    let status = response.status().as_u16();
    let mut headers: Vec<(String, String)> = response
        .headers()
        .iter()
        .filter(|(name, _)| {
            !matches!(
                name.as_str(),
                "date" | "x-request-id" | "ratelimit-remaining" | "ratelimit-reset"
            )
        })
        .map(|(name, value)| {
            (
                name.to_string(),
                value.to_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    headers.sort();
    let mut body: Value = response.json().await.unwrap();
    body["error"]
        .as_object_mut()
        .map(|error| error.remove("request_id"));
    (status, headers, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_reveals_nothing_about_whether_the_account_exists() {
    let app = spawn_app(Backend::Sqlite).await;
    app.register("alice").await;
    // The login limit counts per account too; use fresh ones for the headers.
    let existing = observable(app.login("alice", "wrong password!").await).await;
    let unknown = observable(app.login("nobody", "wrong password!").await).await;
    assert_eq!(existing, unknown);

    let (mut known_times, mut unknown_times) = (Vec::new(), Vec::new());
    for _ in 0..50 {
        for (name, times) in [("alice", &mut known_times), ("nobody", &mut unknown_times)] {
            let started = Instant::now();
            assert_eq!(app.login(name, "wrong password!").await.status(), 401);
            times.push(started.elapsed());
        }
    }
    let median = |times: &mut Vec<Duration>| {
        times.sort();
        times[times.len() / 2].as_secs_f64()
    };
    let (known, unknown) = (median(&mut known_times), median(&mut unknown_times));
    let difference = (known - unknown).abs() / known.max(unknown);
    assert!(
        difference < 0.2,
        "medians {known:.4}s vs {unknown:.4}s differ by {:.0}%",
        difference * 100.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_can_be_mass_assigned_through_registration() {
    let app = spawn_app(Backend::Sqlite).await;
    for (field, value) in [
        ("id", json!(1)),
        ("role", json!("admin")),
        ("password_hash", json!("$argon2id$...")),
        ("created_at", json!("2020-01-01T00:00:00Z")),
        ("updated_at", json!("2020-01-01T00:00:00Z")),
        ("version", json!(99)),
    ] {
        let mut body =
            json!({"username": "mallory", "email": "m@example.com", "password": PASSWORD});
        body[field] = value;
        let response = app.post("/api/v1/auth/register", body).await;
        assert_eq!(response.status(), 422, "{field}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["details"][0]["field"], field);
    }
    assert_eq!(
        app.register("mallory").await.status(),
        201,
        "nothing was created before"
    );
}
