//! The audit log: who did what, recorded with the change, read by admins.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, error_code};
use crate::on_both_databases;

async fn events(app: &TestApp, token: &str, query: &str) -> Value {
    let response = app
        .get(&format!("/api/v1/admin/audit?{query}"), token)
        .await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn actions(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["action"].as_str().unwrap().to_string())
        .collect()
}

on_both_databases! {
    async fn account_events_are_recorded_newest_first_with_who_and_from_where(app) {
        let root = app.admin("root").await;
        let alice = app.user("alice").await;
        assert_eq!(app.login("alice", "not the password").await.status(), 401);
        let path = format!("/api/v1/users/{}", alice.id);
        assert_eq!(app.put(&path, &alice.token, json!({"username": "alicia"})).await.status(), 200);
        assert_eq!(app.put(&path, &root.token, json!({"disabled": true})).await.status(), 200);
        let page = events(&app, &root.token, &format!("subject_id={}", alice.id)).await;
        assert_eq!(
            actions(&page),
            ["user.disabled", "user.updated", "auth.login_failed", "auth.login", "user.registered"]
        );
        let items = page["items"].as_array().unwrap();
        assert_eq!(items[0]["actor_id"], root.id);
        assert_eq!(items[1]["details"], json!({"fields": ["username"]}));
        assert_eq!(items[1]["actor_id"], alice.id);
        assert_eq!(items[2]["details"], json!({}), "never the name typed");
        assert_eq!(items[3]["ip"], "127.0.0.1");
        assert!(items[3]["request_id"].is_string());
        assert!(items[3]["at"].as_str().unwrap().ends_with('Z'));
        let text = page.to_string();
        assert!(!text.contains(PASSWORD) && !text.contains(&alice.token) && !text.contains(&alice.refresh));
    }

    async fn sessions_passwords_deletions_and_evictions_are_recorded(app) {
        let root = app.admin("root").await;
        let alice = app.user("alice").await;
        let change = json!({"current_password": PASSWORD, "new_password": "a brand new secret"});
        app.request(Method::PUT, "/api/v1/auth/password", Some(&alice.token), Some(change)).await;
        let token = app.login_token("alice", "a brand new secret").await;
        app.request(Method::POST, "/api/v1/auth/logout", Some(&token), None).await;
        let path = format!("/api/v1/users/{}", alice.id);
        app.get(&path, &root.token).await;
        let evicted = app.request(Method::DELETE, &format!("/api/v1/admin/cache/keys?suffix=:{}", alice.id), Some(&root.token), None).await;
        assert_eq!(evicted.status(), 200);
        assert_eq!(app.request(Method::DELETE, &path, Some(&root.token), None).await.status(), 204);
        let page = events(&app, &root.token, &format!("subject_id={}", alice.id)).await;
        assert_eq!(
            actions(&page),
            ["user.deleted", "auth.logout", "auth.login", "auth.password_changed", "auth.login", "user.registered"]
        );
        let eviction = events(&app, &root.token, "action=admin.cache_evicted").await;
        assert_eq!(eviction["items"][0]["details"], json!({"suffix": format!(":{}", alice.id), "prefix": null, "deleted": 1}));
        assert_eq!(eviction["items"][0]["actor_id"], root.id);
    }

    async fn a_reset_request_is_recorded_whether_or_not_the_address_is_known(app) {
        let root = app.admin("root").await;
        let alice = app.user("alice").await;
        for email in ["alice@example.com", "nobody@example.com"] {
            let response = app.post("/api/v1/auth/password/forgot", json!({ "email": email })).await;
            assert_eq!(response.status(), 202);
        }
        let page = events(&app, &root.token, "action=auth.password_reset_requested").await;
        let items = page["items"].as_array().unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0]["subject_id"], Value::Null, "the unknown address has no account");
        assert_eq!(items[1]["subject_id"], alice.id);
        assert_eq!(items[1]["actor_id"], Value::Null, "whoever asked did not sign in");
        assert_eq!(items[1]["ip"], "127.0.0.1");
    }

    async fn disabling_with_another_change_records_both(app) {
        let root = app.admin("root").await;
        let alice = app.user("alice").await;
        let path = format!("/api/v1/users/{}", alice.id);
        let change = json!({"role": "admin", "disabled": true});
        assert_eq!(app.put(&path, &root.token, change).await.status(), 200);
        let page = events(&app, &root.token, &format!("subject_id={}", alice.id)).await;
        assert_eq!(actions(&page)[..2], ["user.disabled", "user.updated"]);
        assert_eq!(page["items"][1]["details"], json!({"fields": ["role"]}));
        let disabled = events(&app, &root.token, "action=user.disabled").await;
        assert_eq!(disabled["items"][0]["subject_id"], alice.id);
    }

    async fn a_change_that_fails_leaves_no_event(app) {
        let root = app.admin("root").await;
        let alice = app.user("alice").await;
        app.register("bob").await;
        let taken = app.put(&format!("/api/v1/users/{}", alice.id), &alice.token, json!({"username": "bob"})).await;
        assert_eq!(taken.status(), 409);
        let duplicate = app.register("alice").await;
        assert_eq!(duplicate.status(), 409);
        let page = events(&app, &root.token, &format!("subject_id={}", alice.id)).await;
        assert_eq!(actions(&page), ["auth.login", "user.registered"]);
        let registrations = events(&app, &root.token, "action=user.registered").await;
        assert_eq!(registrations["items"].as_array().unwrap().len(), 3, "root, alice, bob; not the duplicate");
    }

    async fn the_audit_log_pages_by_id_and_is_for_admins_only(app) {
        let root = app.admin("root").await;
        app.user("alice").await;
        let mut alice = String::new();
        for _ in 0..3 {
            alice = app.login_token("alice", PASSWORD).await;
        }
        let first = events(&app, &root.token, "action=auth.login&limit=2").await;
        assert_eq!(actions(&first), ["auth.login", "auth.login"]);
        let before = first["next_before_id"].as_i64().unwrap();
        let rest = events(&app, &root.token, &format!("action=auth.login&before_id={before}&limit=100")).await;
        assert!(rest["items"].as_array().unwrap().iter().all(|event| event["id"].as_i64().unwrap() < before));
        assert_eq!(rest["next_before_id"], Value::Null);
        let (status, _) = error_code(app.get("/api/v1/admin/audit", &alice).await).await;
        assert_eq!(status, 403);
        let (status, error) = error_code(app.get("/api/v1/admin/audit?limit=0&subject_id=x", &root.token).await).await;
        assert_eq!(status, 422);
        assert_eq!(error["details"][0]["field"], "subject_id");
    }
}
