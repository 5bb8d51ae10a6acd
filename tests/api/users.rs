use serde_json::{Value, json};

use crate::helpers::error_code;
use crate::on_both_databases;

on_both_databases! {
    async fn me_returns_the_caller(app) {
        let alice = app.user("alice").await;
        let response = app.get("/api/v1/users/me", &alice.token).await;
        assert_eq!(response.status(), 200);
        let user: Value = response.json().await.unwrap();
        assert_eq!(user["id"], alice.id);
        assert_eq!(user["username"], "alice");
    }

    async fn a_user_is_read_from_sql_once_then_from_the_cache(app) {
        let alice = app.user("alice").await;
        let path = format!("/api/v1/users/{}", alice.id);
        let first = app.get(&path, &alice.token).await;
        assert_eq!(first.status(), 200);
        assert_eq!(first.headers()["x-cache"], "MISS");
        let etag = first.headers()["etag"].to_str().unwrap().to_string();
        let first_body: Value = first.json().await.unwrap();
        let second = app.get(&path, &alice.token).await;
        assert_eq!(second.headers()["x-cache"], "HIT");
        assert_eq!(second.headers()["etag"].to_str().unwrap(), etag);
        assert_eq!(second.json::<Value>().await.unwrap(), first_body);
        let cached = app.redis_get(&app.key(&format!("cache:user:{}", alice.id))).await.unwrap();
        assert!(!cached.contains("password"), "the cache holds the public user only");
        let ttl: i64 = redis::cmd("TTL")
            .arg(app.key(&format!("cache:user:{}", alice.id)))
            .query_async(&mut app.redis_connection().await)
            .await
            .unwrap();
        // The configured 300 s, give or take the 10% jitter.
        assert!((270..=330).contains(&ttl), "cached with the configured TTL, got {ttl}");
    }

    async fn if_none_match_with_the_current_etag_gets_304_with_the_etag(app) {
        let alice = app.user("alice").await;
        let path = format!("/api/v1/users/{}", alice.id);
        let etag = app.get(&path, &alice.token).await.headers()["etag"].to_str().unwrap().to_string();
        assert!(etag.starts_with('"') && etag.ends_with('"'), "a strong, quoted ETag");
        let response = app.client.get(app.url(&path)).bearer_auth(&alice.token)
            .header("if-none-match", &etag).send().await.unwrap();
        assert_eq!(response.status(), 304);
        assert_eq!(response.headers()["etag"].to_str().unwrap(), etag);
        let stale = app.client.get(app.url(&path)).bearer_auth(&alice.token)
            .header("if-none-match", "\"something-else\"").send().await.unwrap();
        assert_eq!(stale.status(), 200);
    }

    async fn an_unknown_user_is_404_and_a_malformed_id_is_422(app) {
        let alice = app.user("alice").await;
        let (status, error) = error_code(app.get("/api/v1/users/999999", &alice.token).await).await;
        assert_eq!((status, error["code"].as_str()), (404, Some("not_found")));
        let (status, error) = error_code(app.get("/api/v1/users/abc", &alice.token).await).await;
        assert_eq!((status, error["code"].as_str()), (422, Some("validation_failed")));
    }

    async fn an_update_is_visible_to_the_next_reader_at_once(app) {
        let alice = app.user("alice").await;
        let path = format!("/api/v1/users/{}", alice.id);
        let old_etag = app.get(&path, &alice.token).await.headers()["etag"].to_str().unwrap().to_string();
        assert_eq!(app.get(&path, &alice.token).await.headers()["x-cache"], "HIT");
        let response = app.put(&path, &alice.token, json!({"username": "alice2", "email": "New@Example.com"})).await;
        assert_eq!(response.status(), 200);
        let updated: Value = response.json().await.unwrap();
        assert_eq!(updated["username"], "alice2");
        assert_eq!(updated["email"], "new@example.com");
        let read = app.get(&path, &alice.token).await;
        assert_ne!(read.headers()["etag"].to_str().unwrap(), old_etag);
        assert_eq!(read.json::<Value>().await.unwrap(), updated);
    }

    async fn users_may_update_only_themselves_and_only_admins_change_roles(app) {
        let alice = app.user("alice").await;
        let bob = app.user("bobby").await;
        let path = format!("/api/v1/users/{}", bob.id);
        let (status, error) = error_code(app.put(&path, &alice.token, json!({"username": "mallory"})).await).await;
        assert_eq!((status, error["code"].as_str()), (403, Some("forbidden")));
        let (status, _) = error_code(app.put(&path, &bob.token, json!({"role": "admin"})).await).await;
        assert_eq!(status, 403);
        let admin = app.admin("root").await;
        let response = app.put(&path, &admin.token, json!({"role": "admin"})).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.json::<Value>().await.unwrap()["role"], "admin");
        assert_eq!(app.get("/api/v1/users/me", &bob.token).await.status(), 401, "a role change ends the session");
    }

    async fn an_update_to_a_taken_name_is_409_and_changes_nothing(app) {
        let alice = app.user("alice").await;
        app.user("bobby").await;
        let path = format!("/api/v1/users/{}", alice.id);
        let before: Value = app.get(&path, &alice.token).await.json().await.unwrap();
        let (status, error) = error_code(app.put(&path, &alice.token, json!({"username": "Bobby", "email": "x@example.com"})).await).await;
        assert_eq!((status, error["code"].as_str()), (409, Some("conflict")));
        let after: Value = app.get(&path, &alice.token).await.json().await.unwrap();
        assert_eq!(before, after);
    }

    async fn an_invalid_update_names_the_field_and_unknown_fields_are_refused(app) {
        let alice = app.user("alice").await;
        let path = format!("/api/v1/users/{}", alice.id);
        for (body, field) in [
            (json!({"email": "not-an-email"}), "email"),
            (json!({"username": "x"}), "username"),
            (json!({"role": "superuser"}), "role"),
            (json!({"id": 5}), "id"),
            (json!({"password_hash": "x"}), "password_hash"),
            (json!({"created_at": "2020-01-01T00:00:00Z"}), "created_at"),
        ] {
            let (status, error) = error_code(app.put(&path, &alice.token, body).await).await;
            assert_eq!(status, 422);
            assert_eq!(error["details"][0]["field"], field);
        }
    }

    async fn delete_removes_the_user_evicts_the_cache_and_ends_the_session(app) {
        let alice = app.user("alice").await;
        let bob = app.user("bobby").await;
        let path = format!("/api/v1/users/{}", alice.id);
        app.get(&path, &bob.token).await;
        assert_eq!(app.get(&path, &bob.token).await.headers()["x-cache"], "HIT");
        let forbidden = app.request(reqwest::Method::DELETE, &path, Some(&bob.token), None).await;
        assert_eq!(forbidden.status(), 403);
        let deleted = app.request(reqwest::Method::DELETE, &path, Some(&alice.token), None).await;
        assert_eq!(deleted.status(), 204);
        assert_eq!(app.get(&path, &bob.token).await.status(), 404);
        assert_eq!(app.get("/api/v1/users/me", &alice.token).await.status(), 401);
        assert_eq!(app.login("alice", crate::helpers::PASSWORD).await.status(), 401);
        let again = app.request(reqwest::Method::DELETE, &path, Some(&bob.token), None).await;
        assert_eq!(again.status(), 403);
    }

    async fn admins_list_users_page_by_page(app) {
        let admin = app.admin("root").await;
        for name in ["user1", "user2", "user3", "user4"] {
            app.register(name).await;
        }
        let first: Value = app.get("/api/v1/users?limit=2", &admin.token).await.json().await.unwrap();
        let names: Vec<&str> = first["items"].as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap()).collect();
        assert_eq!(names, ["root", "user1"]);
        let after = first["next_after_id"].as_i64().unwrap();
        let rest: Value = app.get(&format!("/api/v1/users?limit=10&after_id={after}"), &admin.token).await.json().await.unwrap();
        assert_eq!(rest["items"].as_array().unwrap().len(), 3);
        assert_eq!(rest["next_after_id"], Value::Null);
        let all: Value = app.get("/api/v1/users", &admin.token).await.json().await.unwrap();
        assert_eq!(all["items"].as_array().unwrap().len(), 5, "default limit 20 covers all");
        for bad in ["limit=0", "limit=101", "limit=x", "after_id=-1"] {
            let (status, error) = error_code(app.get(&format!("/api/v1/users?{bad}"), &admin.token).await).await;
            assert_eq!(status, 422, "{bad}");
            assert_eq!(error["details"][0]["field"], bad.split('=').next().unwrap());
        }
        let user = app.user("plain").await;
        assert_eq!(app.get("/api/v1/users", &user.token).await.status(), 403);
    }
}
