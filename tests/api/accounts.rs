use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, error_code};
use crate::on_both_databases;

on_both_databases! {
    async fn register_answers_201_with_the_user_and_its_location(app) {
        let response = app
            .post("/api/v1/auth/register", json!({"username": "alice", "email": "Alice@Example.COM", "password": PASSWORD}))
            .await;
        assert_eq!(response.status(), 201);
        let location = response.headers()["location"].to_str().unwrap().to_string();
        let user: Value = response.json().await.unwrap();
        assert_eq!(location, format!("/api/v1/users/{}", user["id"]));
        assert_eq!(user["username"], "alice");
        assert_eq!(user["email"], "alice@example.com", "e-mail is stored lower-case");
        assert_eq!(user["role"], "user");
        assert!(user["created_at"].as_str().unwrap().ends_with('Z'));
        assert!(user.get("password_hash").is_none() && user.get("password").is_none());
    }

    async fn register_names_every_invalid_field(app) {
        let response = app
            .post("/api/v1/auth/register", json!({"username": "a b", "email": "nope", "password": "short"}))
            .await;
        let (status, error) = error_code(response).await;
        assert_eq!(status, 422);
        assert_eq!(error["code"], "validation_failed");
        let fields: Vec<&str> = error["details"].as_array().unwrap().iter().map(|d| d["field"].as_str().unwrap()).collect();
        assert_eq!(fields, ["username", "email", "password"]);
    }

    async fn register_names_missing_fields_and_rejects_unknown_ones(app) {
        let (status, error) = error_code(app.post("/api/v1/auth/register", json!({"username": "alice"})).await).await;
        assert_eq!(status, 422);
        assert_eq!(error["details"][0]["field"], "email");
        assert_eq!(error["details"][1]["field"], "password");
        let body = json!({"username": "alice", "email": "a@example.com", "password": PASSWORD, "role": "admin"});
        let (status, error) = error_code(app.post("/api/v1/auth/register", body).await).await;
        assert_eq!(status, 422);
        assert_eq!(error["details"][0]["field"], "role");
    }

    async fn a_taken_username_or_email_answers_409_whatever_the_case(app) {
        assert_eq!(app.register("alice").await.status(), 201);
        let same_name = json!({"username": "ALICE", "email": "other@example.com", "password": PASSWORD});
        let (status, error) = error_code(app.post("/api/v1/auth/register", same_name).await).await;
        assert_eq!((status, error["code"].as_str()), (409, Some("conflict")));
        assert_eq!(error["details"][0]["field"], "username");
        let same_email = json!({"username": "bob", "email": "ALICE@example.com", "password": PASSWORD});
        let (status, error) = error_code(app.post("/api/v1/auth/register", same_email).await).await;
        assert_eq!((status, error["code"].as_str()), (409, Some("conflict")));
        assert_eq!(error["details"][0]["field"], "email");
    }

    async fn login_with_json_returns_a_bearer_token(app) {
        app.register("alice").await;
        let response = app.login("alice", PASSWORD).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["cache-control"], "no-store");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["token_type"], "bearer");
        assert_eq!(body["expires_in"], 900);
        assert_eq!(body["refresh_expires_in"], 2_592_000);
        assert!(body["refresh_token"].as_str().unwrap().len() >= 64);
        let token = body["access_token"].as_str().unwrap();
        assert_eq!(app.get("/api/v1/users/me", token).await.status(), 200);
    }

    async fn login_with_a_form_and_with_the_email_both_work(app) {
        app.register("alice").await;
        let response = app
            .client
            .post(app.url("/api/v1/auth/login"))
            .form(&[("username", "Alice@Example.com"), ("password", PASSWORD)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }

    async fn wrong_password_and_unknown_user_get_the_same_401(app) {
        app.register("alice").await;
        let wrong_password = app.login("alice", "not the password").await;
        let unknown_user = app.login("nobody", "not the password").await;
        assert_eq!(wrong_password.status(), 401);
        assert_eq!(unknown_user.status(), 401);
        let mut wrong: Value = wrong_password.json().await.unwrap();
        let mut unknown: Value = unknown_user.json().await.unwrap();
        // Each request has its own id; everything else must match.
        for body in [&mut wrong, &mut unknown] {
            body["error"].as_object_mut().unwrap().remove("request_id");
        }
        assert_eq!(wrong, unknown);
        assert_eq!(wrong["error"]["code"], "invalid_credentials");
    }

    async fn a_new_login_revokes_the_earlier_token(app) {
        app.register("alice").await;
        let first = app.login_token("alice", PASSWORD).await;
        let second = app.login_token("alice", PASSWORD).await;
        let (status, error) = error_code(app.get("/api/v1/users/me", &first).await).await;
        assert_eq!((status, error["code"].as_str()), (401, Some("unauthorized")));
        assert_eq!(app.get("/api/v1/users/me", &second).await.status(), 200);
    }

    async fn logout_revokes_the_token_at_once(app) {
        let alice = app.user("alice").await;
        let sid = app.session_id(&alice.token).await;
        let response = app.request(Method::POST, "/api/v1/auth/logout", Some(&alice.token), None).await;
        assert_eq!(response.status(), 204);
        assert_eq!(app.get("/api/v1/users/me", &alice.token).await.status(), 401);
        assert_eq!(app.redis_get(&app.key(&format!("session:{sid}"))).await.as_deref(), Some("ended"));
    }

    async fn a_logout_with_a_revoked_token_leaves_the_new_session_alone(app) {
        let alice = app.user("alice").await;
        let newer = app.login_token("alice", PASSWORD).await;
        let response = app.request(Method::POST, "/api/v1/auth/logout", Some(&alice.token), None).await;
        assert_eq!(response.status(), 401, "the old token is no longer a session");
        assert_eq!(app.get("/api/v1/users/me", &newer).await.status(), 200);
    }

    async fn a_password_change_revokes_every_token_and_the_new_password_works(app) {
        let alice = app.user("alice").await;
        let change = json!({"current_password": PASSWORD, "new_password": "a brand new secret"});
        let response = app.request(Method::PUT, "/api/v1/auth/password", Some(&alice.token), Some(change)).await;
        assert_eq!(response.status(), 204);
        assert_eq!(app.get("/api/v1/users/me", &alice.token).await.status(), 401);
        assert_eq!(app.login("alice", PASSWORD).await.status(), 401);
        assert_eq!(app.login("alice", "a brand new secret").await.status(), 200);
    }

    async fn a_password_change_needs_the_current_password_and_a_valid_new_one(app) {
        let alice = app.user("alice").await;
        let wrong = json!({"current_password": "not it at all", "new_password": "a brand new secret"});
        let response = app.request(Method::PUT, "/api/v1/auth/password", Some(&alice.token), Some(wrong)).await;
        assert_eq!(error_code(response).await.1["code"], "invalid_credentials");
        let short = json!({"current_password": PASSWORD, "new_password": "short"});
        let response = app.request(Method::PUT, "/api/v1/auth/password", Some(&alice.token), Some(short)).await;
        let (status, error) = error_code(response).await;
        assert_eq!((status, error["details"][0]["field"].as_str()), (422, Some("new_password")));
        assert_eq!(app.get("/api/v1/users/me", &alice.token).await.status(), 200, "nothing changed");
    }

    async fn missing_malformed_and_forged_tokens_get_401(app) {
        let alice = app.user("alice").await;
        let no_token = app.request(Method::GET, "/api/v1/users/me", None, None).await;
        assert_eq!(no_token.status(), 401);
        assert_eq!(no_token.headers()["www-authenticate"], "Bearer");
        for token in ["garbage", "a.b.c", &format!("{}x", alice.token)] {
            assert_eq!(app.get("/api/v1/users/me", token).await.status(), 401, "{token}");
        }
        let basic = app.client.get(app.url("/api/v1/users/me")).basic_auth("alice", Some(PASSWORD)).send().await.unwrap();
        assert_eq!(basic.status(), 401);
    }

    async fn passwords_are_stored_as_argon2id_and_never_in_redis(app) {
        let alice = app.user("alice").await;
        app.get(&format!("/api/v1/users/{}", alice.id), &alice.token).await;
        let credentials = app
            .database
            .users()
            .find_credentials_by_id(user_api::domain::UserId(alice.id))
            .await
            .unwrap()
            .unwrap();
        assert!(credentials.password_hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        let cached = app.redis_get(&app.key(&format!("cache:user:{}", alice.id))).await.unwrap();
        assert!(!cached.contains("argon2") && !cached.contains(PASSWORD));
        let sid = app.session_id(&alice.token).await;
        // The session key holds the user id: no token, nothing secret.
        let session = app.redis_get(&app.key(&format!("session:{sid}"))).await.unwrap();
        assert_eq!(session, alice.id.to_string());
    }
}
