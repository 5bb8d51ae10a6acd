//! Sessions: refresh with rotation and reuse detection, several sessions,
//! the session list, ending one or all, the refresh cookie, and the races
//! between them.

use std::time::Duration;

use futures_util::future::join_all;
use reqwest::{Method, Response};
use serde_json::{Value, json};

use crate::helpers::{Backend, PASSWORD, TestApp, error_code, spawn_app_with, tokens_of};
use crate::on_both_databases;

async fn refresh(app: &TestApp, refresh_token: &str) -> Response {
    app.post(
        "/api/v1/auth/refresh",
        json!({"refresh_token": refresh_token}),
    )
    .await
}

/// The new `(access, refresh)` pair of a refresh that must succeed.
async fn refreshed(app: &TestApp, refresh_token: &str) -> (String, String) {
    let response = refresh(app, refresh_token).await;
    assert_eq!(response.status(), 200, "refresh");
    assert_eq!(response.headers()["cache-control"], "no-store");
    tokens_of(&response.json().await.unwrap())
}

async fn me_status(app: &TestApp, token: &str) -> u16 {
    app.get("/api/v1/users/me", token).await.status().as_u16()
}

async fn post_with(app: &TestApp, path: &str, token: &str) -> u16 {
    let response = app.request(Method::POST, path, Some(token), None).await;
    response.status().as_u16()
}

async fn sessions_of(app: &TestApp, token: &str) -> Vec<Value> {
    let response = app.get("/api/v1/auth/sessions", token).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["items"].as_array().unwrap().clone()
}

fn several_sessions(settings: &mut user_api::config::Settings) {
    settings.auth.single_session = false;
    settings.auth.max_sessions = 3;
}

on_both_databases! {
    async fn a_refresh_rotates_the_refresh_token_and_the_new_pair_works(app) {
        let alice = app.user("alice").await;
        let (access, next) = refreshed(&app, &alice.refresh).await;
        assert_ne!(next, alice.refresh);
        assert_ne!(access, alice.token);
        assert_eq!(me_status(&app, &access).await, 200);
        assert_eq!(me_status(&app, &alice.token).await, 200, "the same session");
        let (third_access, _) = refreshed(&app, &next).await;
        assert_eq!(me_status(&app, &third_access).await, 200);
    }

    async fn six_tabs_refreshing_with_one_token_at_once_all_keep_working(app) {
        let alice = app.user("alice").await;
        let answers = join_all((0..6).map(|_| refresh(&app, &alice.refresh))).await;
        let mut pairs = Vec::new();
        for answer in answers {
            assert_eq!(answer.status(), 200);
            pairs.push(tokens_of(&answer.json().await.unwrap()));
        }
        for (access, next) in &pairs {
            assert_eq!(me_status(&app, access).await, 200);
            assert_eq!(next, &pairs[0].1, "every tab holds the same next refresh token");
        }
        assert_eq!(sessions_of(&app, &pairs[0].0).await.len(), 1, "still one session");
        refreshed(&app, &pairs[0].1).await;
    }

    async fn a_hundred_parallel_refreshes_of_one_token_all_get_the_same_working_pair(app) {
        let alice = app.user("alice").await;
        let answers = join_all((0..100).map(|_| refresh(&app, &alice.refresh))).await;
        let mut next_tokens = std::collections::HashSet::new();
        let mut accesses = Vec::new();
        for answer in answers {
            assert_eq!(answer.status(), 200);
            let (access, next) = tokens_of(&answer.json().await.unwrap());
            next_tokens.insert(next);
            accesses.push(access);
        }
        assert_eq!(next_tokens.len(), 1);
        for access in accesses.iter().step_by(10) {
            assert_eq!(me_status(&app, access).await, 200);
        }
    }

    async fn unknown_malformed_and_truncated_refresh_tokens_get_401_and_none_at_all_422(app) {
        let alice = app.user("alice").await;
        let (sid, _) = alice.refresh.split_once('.').unwrap();
        let truncated = &alice.refresh[..alice.refresh.len() - 1];
        let forged = format!("{sid}.{}", "0".repeat(64));
        let foreign = format!("{}.{}", "0".repeat(32), "0".repeat(64));
        for token in ["garbage", truncated, &forged, &foreign, &alice.token, ""] {
            let (status, error) = error_code(refresh(&app, token).await).await;
            assert_eq!((status, error["code"].as_str()), (401, Some("unauthorized")), "{token:?}");
        }
        let (status, error) = error_code(app.post("/api/v1/auth/refresh", json!({})).await).await;
        assert_eq!((status, error["details"][0]["field"].as_str()), (422, Some("refresh_token")));
        assert_eq!(me_status(&app, &alice.token).await, 200, "nothing ended by the attempts");
        refreshed(&app, &alice.refresh).await;
    }

    async fn a_form_body_refreshes_too(app) {
        let alice = app.user("alice").await;
        let response = app
            .client
            .post(app.url("/api/v1/auth/refresh"))
            .form(&[("refresh_token", alice.refresh.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }

    async fn single_login_ends_the_earlier_session_with_its_refresh_token(app) {
        let alice = app.user("alice").await;
        let (second, _) = app.login_tokens("alice", PASSWORD).await;
        assert_eq!(me_status(&app, &alice.token).await, 401);
        assert_eq!(refresh(&app, &alice.refresh).await.status(), 401);
        assert_eq!(me_status(&app, &second).await, 200);
        assert_eq!(sessions_of(&app, &second).await.len(), 1);
    }

    async fn the_session_list_shows_each_live_session_newest_first(app) {
        let alice = app.user("alice").await;
        let sid = app.session_id(&alice.token).await;
        let items = sessions_of(&app, &alice.token).await;
        assert_eq!(items.len(), 1);
        let session = &items[0];
        assert_eq!(session["id"], sid.as_str());
        assert_eq!(session["current"], true);
        assert_eq!(session["ip"], "127.0.0.1");
        assert!(session["created_at"].as_str().unwrap().ends_with('Z'));
        assert!(session["last_used_at"].is_string());
        assert!(session.get("user_agent").is_some());
        assert!(!session.to_string().contains(&alice.refresh[33..]), "no token in the list");
    }

    async fn ending_one_session_refuses_its_tokens_and_another_users_id_is_404(app) {
        let alice = app.user("alice").await;
        let bob = app.user("bob").await;
        let sid = app.session_id(&alice.token).await;
        let path = format!("/api/v1/auth/sessions/{sid}");
        let by_bob = app.request(Method::DELETE, &path, Some(&bob.token), None).await;
        assert_eq!(error_code(by_bob).await.0, 404);
        let odd = app.request(Method::DELETE, "/api/v1/auth/sessions/..%2F1", Some(&bob.token), None).await;
        assert_eq!(odd.status(), 404);
        assert_eq!(me_status(&app, &alice.token).await, 200, "bob ended nothing");
        let response = app.request(Method::DELETE, &path, Some(&alice.token), None).await;
        assert_eq!(response.status(), 204);
        assert_eq!(me_status(&app, &alice.token).await, 401);
        assert_eq!(refresh(&app, &alice.refresh).await.status(), 401);
    }

    async fn logout_ends_the_access_and_the_refresh_token_at_once(app) {
        let alice = app.user("alice").await;
        assert_eq!(post_with(&app, "/api/v1/auth/logout", &alice.token).await, 204);
        assert_eq!(me_status(&app, &alice.token).await, 401);
        assert_eq!(refresh(&app, &alice.refresh).await.status(), 401);
    }

    async fn an_access_token_from_before_a_refresh_dies_with_its_session(app) {
        let alice = app.user("alice").await;
        let (access, _) = refreshed(&app, &alice.refresh).await;
        assert_eq!(post_with(&app, "/api/v1/auth/logout", &access).await, 204);
        assert_eq!(me_status(&app, &alice.token).await, 401);
    }

    async fn a_password_change_ends_every_session_and_its_refresh_tokens(app) {
        let alice = app.user("alice").await;
        let change = json!({"current_password": PASSWORD, "new_password": "a brand new secret"});
        let response = app.request(Method::PUT, "/api/v1/auth/password", Some(&alice.token), Some(change)).await;
        assert_eq!(response.status(), 204);
        assert_eq!(refresh(&app, &alice.refresh).await.status(), 401);
    }

    async fn a_user_or_an_admin_can_end_every_session_of_the_user(app) {
        let alice = app.user("alice").await;
        let bob = app.user("bob").await;
        let root = app.admin("root").await;
        let path = format!("/api/v1/users/{}/sessions", alice.id);
        let by_bob = app.request(Method::DELETE, &path, Some(&bob.token), None).await;
        assert_eq!(error_code(by_bob).await.0, 403);
        assert_eq!(me_status(&app, &alice.token).await, 200);
        let by_root = app.request(Method::DELETE, &path, Some(&root.token), None).await;
        assert_eq!(by_root.status(), 204);
        assert_eq!(me_status(&app, &alice.token).await, 401);
        assert_eq!(refresh(&app, &alice.refresh).await.status(), 401);
        let (again, _) = app.login_tokens("alice", PASSWORD).await;
        let by_alice = app.request(Method::DELETE, &path, Some(&again), None).await;
        assert_eq!(by_alice.status(), 204);
        assert_eq!(me_status(&app, &again).await, 401);
        let unknown = app.request(Method::DELETE, "/api/v1/users/999999/sessions", Some(&root.token), None).await;
        assert_eq!(error_code(unknown).await.0, 404);
    }

    async fn a_redis_flushed_mid_session_costs_the_access_token_but_never_the_session(app) {
        let alice = app.user("alice").await;
        // This app's keys only: a FLUSHDB would empty the Redis that every
        // test running beside this one shares.
        app.forget_redis_keys().await;
        assert_eq!(me_status(&app, &alice.token).await, 401);
        let (access, _) = refreshed(&app, &alice.refresh).await;
        assert_eq!(me_status(&app, &access).await, 200);
    }

    async fn refresh_tokens_are_stored_only_as_hashes(app) {
        let alice = app.user("alice").await;
        let (_, next) = refreshed(&app, &alice.refresh).await;
        let sql = "SELECT refresh_hash || ' ' || COALESCE(previous_refresh_hash, '') FROM sessions";
        let stored: Vec<String> = match &app.database {
            user_api::repositories::sql::Database::Sqlite(pool) => sqlx::query_scalar(sql).fetch_all(pool).await,
            user_api::repositories::sql::Database::Postgres(pool) => sqlx::query_scalar(sql).fetch_all(pool).await,
        }
        .unwrap();
        let secrets = [&alice.refresh[33..], &next[33..]];
        for row in &stored {
            assert!(secrets.iter().all(|secret| !row.contains(secret)), "{row}");
        }
        let mut connection = app.redis_connection().await;
        for key in app.redis_keys().await {
            let value: Option<Vec<u8>> = redis::cmd("GET").arg(&key).query_async(&mut connection).await.unwrap_or(None);
            let value = String::from_utf8_lossy(&value.unwrap_or_default()).into_owned();
            assert!(secrets.iter().all(|secret| !value.contains(secret) && !key.contains(secret)), "{key}");
        }
    }

    async fn a_refresh_racing_a_logout_never_outlives_it(app) {
        for _ in 0..5 {
            let (access, refresh_token) = app.login_tokens_of_new_user().await;
            let (logout, refreshed) = tokio::join!(
                post_with(&app, "/api/v1/auth/logout", &access),
                refresh(&app, &refresh_token),
            );
            assert_eq!(logout, 204);
            if refreshed.status() == 200 {
                let (new_access, new_refresh) = tokens_of(&refreshed.json().await.unwrap());
                assert_eq!(me_status(&app, &new_access).await, 401, "ended with its session");
                assert_eq!(refresh(&app, &new_refresh).await.status(), 401);
            }
            assert_eq!(me_status(&app, &access).await, 401);
        }
    }

    async fn a_refresh_racing_a_revoke_never_outlives_it(app) {
        for _ in 0..5 {
            let (access, refresh_token) = app.login_tokens_of_new_user().await;
            let sid = app.session_id(&access).await;
            let path = format!("/api/v1/auth/sessions/{sid}");
            let (revoke, refreshed) = tokio::join!(
                app.request(Method::DELETE, &path, Some(&access), None),
                refresh(&app, &refresh_token),
            );
            assert_eq!(revoke.status(), 204);
            if refreshed.status() == 200 {
                let (new_access, _) = tokens_of(&refreshed.json().await.unwrap());
                assert_eq!(me_status(&app, &new_access).await, 401);
            }
        }
    }

    async fn two_logins_at_once_leave_exactly_one_session_with_single_login(app) {
        app.register("alice").await;
        let (first, second) = tokio::join!(app.login("alice", PASSWORD), app.login("alice", PASSWORD));
        let mut live = 0;
        for response in [first, second] {
            assert_eq!(response.status(), 200);
            let (access, _) = tokens_of(&response.json().await.unwrap());
            if me_status(&app, &access).await == 200 {
                live += 1;
            }
        }
        assert_eq!(live, 1);
    }
}

mod several_sessions {
    use super::*;

    on_both_databases! {
        configure several_sessions;

        async fn with_several_sessions_each_login_is_its_own_and_the_oldest_ends_past_the_limit(app) {
            app.register("alice").await;
            let mut logins = Vec::new();
            for _ in 0..3 {
                logins.push(app.login_tokens("alice", PASSWORD).await);
            }
            for (access, _) in &logins {
                assert_eq!(me_status(&app, access).await, 200);
            }
            let listed = sessions_of(&app, &logins[2].0).await;
            assert_eq!(listed.len(), 3);
            assert_eq!(listed[0]["current"], true, "newest first");
            assert_eq!(listed.iter().filter(|session| session["current"] == true).count(), 1);
            let fourth = app.login_tokens("alice", PASSWORD).await;
            assert_eq!(me_status(&app, &logins[0].0).await, 401, "the oldest ended");
            assert_eq!(refresh(&app, &logins[0].1).await.status(), 401);
            assert_eq!(me_status(&app, &logins[1].0).await, 200);
            assert_eq!(post_with(&app, "/api/v1/auth/logout", &fourth.0).await, 204);
            assert_eq!(me_status(&app, &logins[1].0).await, 200, "logout ends only its own session");
            assert_eq!(post_with(&app, "/api/v1/auth/logout-all", &logins[1].0).await, 204);
            for (access, refresh_token) in &logins[1..] {
                assert_eq!(me_status(&app, access).await, 401);
                assert_eq!(refresh(&app, refresh_token).await.status(), 401);
            }
        }
    }
}

mod short_grace {
    use super::*;

    on_both_databases! {
        configure |settings| settings.auth.refresh_reuse_grace_seconds = 1;

        async fn a_spent_refresh_token_after_the_grace_period_ends_the_whole_session(app) {
            let alice = app.user("alice").await;
            let (access, next) = refreshed(&app, &alice.refresh).await;
            tokio::time::sleep(Duration::from_millis(2100)).await;
            let (status, error) = error_code(refresh(&app, &alice.refresh).await).await;
            assert_eq!((status, error["code"].as_str()), (401, Some("unauthorized")));
            assert_eq!(me_status(&app, &access).await, 401, "the thief's and the user's tokens alike");
            assert_eq!(me_status(&app, &alice.token).await, 401);
            assert_eq!(refresh(&app, &next).await.status(), 401);
        }

        async fn a_token_spent_several_rotations_ago_ends_the_whole_session_too(app) {
            let alice = app.user("alice").await;
            let (_, second) = refreshed(&app, &alice.refresh).await;
            let (_, third) = refreshed(&app, &second).await;
            let (access, fourth) = refreshed(&app, &third).await;
            tokio::time::sleep(Duration::from_millis(2100)).await;
            let (status, error) = error_code(refresh(&app, &alice.refresh).await).await;
            assert_eq!((status, error["code"].as_str()), (401, Some("unauthorized")));
            assert_eq!(me_status(&app, &access).await, 401, "the session ended");
            assert_eq!(refresh(&app, &fourth).await.status(), 401);
        }
    }
}

mod refresh_cookie {
    use super::*;

    on_both_databases! {
        configure |settings| settings.auth.refresh_cookie = true;

        async fn the_refresh_cookie_is_set_read_and_cleared(app) {
            app.register("alice").await;
            let login = app.login("alice", PASSWORD).await;
            let cookie = login.headers()["set-cookie"].to_str().unwrap().to_string();
            for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/api/v1/auth"] {
                assert!(cookie.contains(attribute), "{cookie}");
            }
            let (access, refresh_token) = tokens_of(&login.json().await.unwrap());
            let pair = cookie.split(';').next().unwrap().to_string();
            assert_eq!(pair, format!("refresh_token={refresh_token}"));
            let response = app
                .client
                .post(app.url("/api/v1/auth/refresh"))
                .header("cookie", &pair)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "the cookie alone refreshes");
            let renewed = response.headers()["set-cookie"].to_str().unwrap().to_string();
            assert_ne!(renewed.split(';').next().unwrap(), pair, "rotated");
            let logout = app.request(Method::POST, "/api/v1/auth/logout", Some(&access), None).await;
            assert_eq!(logout.status(), 204);
            let cleared = logout.headers()["set-cookie"].to_str().unwrap();
            assert!(cleared.starts_with("refresh_token=;") && cleared.contains("Max-Age=0"), "{cleared}");
        }
    }
}

/// A second instance on the same database and Redis.
async fn other_instance(app: &TestApp) -> TestApp {
    let settings = app.settings.clone();
    spawn_app_with(Backend::Sqlite, move |own| {
        own.database.url = settings.database.url;
        own.redis = settings.redis;
    })
    .await
}

mod two_instances {
    use super::*;

    on_both_databases! {
        async fn a_session_ended_on_one_instance_is_refused_on_another_at_once(app) {
            let other = other_instance(&app).await;
            let alice = app.user("alice").await;
            assert_eq!(me_status(&other, &alice.token).await, 200);
            let (access, refresh_token) = refreshed(&other, &alice.refresh).await;
            assert_eq!(post_with(&app, "/api/v1/auth/logout", &alice.token).await, 204);
            assert_eq!(me_status(&other, &access).await, 401);
            assert_eq!(refresh(&other, &refresh_token).await.status(), 401);
        }
    }
}

impl TestApp {
    /// A new user's first `(access, refresh)` pair.
    async fn login_tokens_of_new_user(&self) -> (String, String) {
        let name = format!("u{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        assert_eq!(self.register(&name).await.status(), 201);
        self.login_tokens(&name, PASSWORD).await
    }
}
