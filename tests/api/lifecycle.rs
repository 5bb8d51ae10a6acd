//! Account lifecycle: private e-mail addresses, admin disable and search,
//! PATCH and If-Match.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, error_code};
use crate::on_both_databases;

async fn read(app: &TestApp, path: &str, token: &str) -> (String, String, Value) {
    let response = app.get(path, token).await;
    assert_eq!(response.status(), 200);
    let cache = response.headers()["x-cache"].to_str().unwrap().to_string();
    let etag = response.headers()["etag"].to_str().unwrap().to_string();
    (cache, etag, response.json().await.unwrap())
}

async fn set_disabled(app: &TestApp, token: &str, id: i64, disabled: bool) -> u16 {
    let path = format!("/api/v1/users/{id}");
    app.put(&path, token, json!({"disabled": disabled}))
        .await
        .status()
        .as_u16()
}

async fn search(app: &TestApp, token: &str, query: &str) -> (u16, Value) {
    let response = app.get(&format!("/api/v1/users?{query}"), token).await;
    (response.status().as_u16(), response.json().await.unwrap())
}

fn names(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|user| user["username"].as_str().unwrap().to_string())
        .collect()
}

on_both_databases! {
    async fn another_user_sees_the_public_view_and_the_user_and_admins_the_whole_one(app) {
        let alice = app.user("alice").await;
        let bob = app.user("bob").await;
        let root = app.admin("root").await;
        let path = format!("/api/v1/users/{}", alice.id);
        let (_, public_etag, public) = read(&app, &path, &bob.token).await;
        let keys: Vec<&String> = public.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["created_at", "id", "username"], "no e-mail, role or state");
        let (cache, own_etag, own) = read(&app, &path, &alice.token).await;
        assert_eq!(cache, "HIT", "both views come from the one cache entry");
        assert_eq!(own["email"], "alice@example.com");
        assert_eq!(own["email_verified"], false);
        assert_eq!(own["disabled"], false);
        assert_ne!(own_etag, public_etag, "each view has its own ETag");
        let (cache, admin_etag, by_admin) = read(&app, &path, &root.token).await;
        assert_eq!((cache.as_str(), admin_etag, by_admin), ("HIT", own_etag, own));
        let (cache, again, _) = read(&app, &path, &bob.token).await;
        assert_eq!((cache.as_str(), again), ("HIT", public_etag.clone()));
        let not_modified = app
            .client
            .get(app.url(&path))
            .bearer_auth(&bob.token)
            .header("if-none-match", &public_etag)
            .send()
            .await
            .unwrap();
        assert_eq!(not_modified.status(), 304);
    }

    async fn a_cache_entry_in_the_previous_release_s_format_is_read_as_a_miss_and_replaced(app) {
        let alice = app.user("alice").await;
        let bob = app.user("bob").await;
        let path = format!("/api/v1/users/{}", alice.id);
        read(&app, &path, &alice.token).await;
        let key = app.key(&format!("cache:user:{}", alice.id));
        let mut redis = app.redis_connection().await;
        let entry: String = redis::cmd("GET").arg(&key).query_async(&mut redis).await.unwrap();
        let (version, rest) = entry.split_once(':').unwrap();
        let private = rest.split_once(':').unwrap().1.split('\n').next().unwrap();
        // One view and one 128-bit digest, as the release before the two
        // views wrote it.
        let old = format!("{version}:{}:{private}", "0".repeat(32));
        let _: () = redis::cmd("SET").arg(&key).arg(&old).query_async(&mut redis).await.unwrap();
        let (cache, _, public) = read(&app, &path, &bob.token).await;
        assert_eq!(cache, "MISS");
        assert_eq!(public.as_object().unwrap().len(), 3, "the public view, not the old entry: {public}");
        let (cache, _, own) = read(&app, &path, &alice.token).await;
        assert_eq!((cache.as_str(), &own["email"]), ("HIT", &json!("alice@example.com")));
    }

    async fn an_admin_disables_an_account_which_ends_its_sessions_and_its_logins(app) {
        let alice = app.user("alice").await;
        let bob = app.user("bob").await;
        let root = app.admin("root").await;
        assert_eq!(set_disabled(&app, &alice.token, alice.id, true).await, 403, "not by the user");
        assert_eq!(set_disabled(&app, &bob.token, alice.id, true).await, 403);
        assert_eq!(set_disabled(&app, &root.token, alice.id, true).await, 200);
        assert_eq!(app.get("/api/v1/users/me", &alice.token).await.status(), 401);
        let refresh = app.post("/api/v1/auth/refresh", json!({"refresh_token": alice.refresh})).await;
        assert_eq!(refresh.status(), 401);
        let (status, error) = error_code(app.login("alice", PASSWORD).await).await;
        assert_eq!((status, error["code"].as_str()), (403, Some("account_disabled")));
        let (status, error) = error_code(app.login("alice", "not the password").await).await;
        assert_eq!((status, error["code"].as_str()), (401, Some("invalid_credentials")), "no oracle");
        let (_, _, seen) = read(&app, &format!("/api/v1/users/{}", alice.id), &root.token).await;
        assert_eq!(seen["disabled"], true);
        assert_eq!(set_disabled(&app, &root.token, alice.id, false).await, 200);
        assert_eq!(app.login("alice", PASSWORD).await.status(), 200);
    }

    async fn a_disable_racing_a_login_leaves_no_working_session(app) {
        let root = app.admin("root").await;
        for round in 0..5 {
            let name = format!("racer{round}");
            let response = app.register(&name).await;
            let id = response.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
            let (login, disabled) = tokio::join!(app.login(&name, PASSWORD), set_disabled(&app, &root.token, id, true));
            assert_eq!(disabled, 200);
            if login.status() == 200 {
                let token = login.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_string();
                assert_eq!(app.get("/api/v1/users/me", &token).await.status(), 401);
            } else {
                assert!([401, 403].contains(&login.status().as_u16()));
            }
        }
    }

    async fn patch_changes_only_the_fields_given_and_answers_the_etag_a_read_gives(app) {
        let alice = app.user("alice").await;
        let path = format!("/api/v1/users/{}", alice.id);
        let response = app.request(Method::PATCH, &path, Some(&alice.token), Some(json!({"username": "alicia"}))).await;
        assert_eq!(response.status(), 200);
        let etag = response.headers()["etag"].to_str().unwrap().to_string();
        let body: Value = response.json().await.unwrap();
        assert_eq!((body["username"].as_str(), body["email"].as_str()), (Some("alicia"), Some("alice@example.com")));
        let (_, read_etag, read_body) = read(&app, &path, &alice.token).await;
        assert_eq!((read_etag, read_body), (etag, body));
    }

    async fn if_match_with_a_stale_etag_is_412_and_changes_nothing(app) {
        let alice = app.user("alice").await;
        let path = format!("/api/v1/users/{}", alice.id);
        let (_, etag, _) = read(&app, &path, &alice.token).await;
        let put = |body: Value, if_match: String| {
            app.client.put(app.url(&path)).bearer_auth(&alice.token).header("if-match", if_match).json(&body).send()
        };
        let weak = put(json!({"username": "alicia"}), format!("W/{etag}")).await.unwrap();
        assert_eq!(weak.status(), 412, "If-Match compares strongly: a weak tag never matches");
        let first = put(json!({"username": "alicia"}), etag.clone()).await.unwrap();
        assert_eq!(first.status(), 200);
        let (status, error) = error_code(put(json!({"username": "ally"}), etag.clone()).await.unwrap()).await;
        assert_eq!((status, error["code"].as_str()), (412, Some("precondition_failed")));
        let (_, _, now) = read(&app, &path, &alice.token).await;
        assert_eq!(now["username"], "alicia", "nothing changed");
        let any = put(json!({"username": "ally"}), "*".into()).await.unwrap();
        assert_eq!(any.status(), 200);
    }

    async fn a_new_email_address_is_unverified_again(app) {
        let alice = app.user("alice").await;
        let sql = "UPDATE users SET email_verified = TRUE WHERE id = $1";
        match &app.database {
            user_api::repositories::sql::Database::Sqlite(pool) => sqlx::query(sql).bind(alice.id).execute(pool).await.map(drop),
            user_api::repositories::sql::Database::Postgres(pool) => sqlx::query(sql).bind(alice.id).execute(pool).await.map(drop),
        }
        .unwrap();
        let path = format!("/api/v1/users/{}", alice.id);
        let same = app.put(&path, &alice.token, json!({"email": "alice@example.com", "username": "alicia"})).await;
        assert_eq!(same.json::<Value>().await.unwrap()["email_verified"], true, "the same address stays verified");
        let changed = app.put(&path, &alice.token, json!({"email": "new@example.com"})).await;
        assert_eq!(changed.json::<Value>().await.unwrap()["email_verified"], false);
    }

    async fn admins_search_users_by_name_or_email_role_and_state(app) {
        let root = app.admin("root").await;
        for name in ["Carol", "caroline", "bob", "dave"] {
            app.register(name).await;
        }
        let dave = app.login_token("dave", PASSWORD).await;
        let (status, page) = search(&app, &root.token, "q=CAROL").await;
        assert_eq!(status, 200);
        assert_eq!(names(&page), ["Carol", "caroline"]);
        let (_, page) = search(&app, &root.token, "q=b%40EXAMPLE").await;
        assert_eq!(names(&page), ["bob"], "e-mail substrings too");
        let (_, page) = search(&app, &root.token, "q=%25").await;
        assert_eq!(names(&page), Vec::<String>::new(), "% matches only itself");
        let (_, page) = search(&app, &root.token, "role=admin").await;
        assert_eq!(names(&page), ["root"]);
        let (_, bob) = search(&app, &root.token, "q=bob").await;
        let bob_id = bob["items"][0]["id"].as_i64().unwrap();
        assert_eq!(set_disabled(&app, &root.token, bob_id, true).await, 200);
        let (_, page) = search(&app, &root.token, "disabled=true").await;
        assert_eq!(names(&page), ["bob"]);
        let (_, page) = search(&app, &root.token, "q=carol&limit=1").await;
        assert_eq!(names(&page), ["Carol"]);
        let after = page["next_after_id"].as_i64().unwrap();
        let (_, page) = search(&app, &root.token, &format!("q=carol&limit=1&after_id={after}")).await;
        assert_eq!((names(&page), page["next_after_id"].clone()), (vec!["caroline".to_string()], Value::Null));
        let (status, error) = search(&app, &root.token, "role=boss&disabled=maybe").await;
        assert_eq!(status, 422);
        let fields: Vec<&str> = error["error"]["details"].as_array().unwrap().iter().map(|d| d["field"].as_str().unwrap()).collect();
        assert_eq!(fields, ["role", "disabled"]);
        assert_eq!(search(&app, &dave, "q=carol").await.0, 403);
    }
}
