use std::io::Write;
use std::process::Stdio;

use reqwest::Method;
use serde_json::Value;

use crate::helpers::{PASSWORD, TestApp, TestUser, error_code};
use crate::on_both_databases;

async fn evict(app: &TestApp, token: &str, query: &str) -> reqwest::Response {
    let path = format!("/api/v1/admin/cache/keys?{query}");
    app.request(Method::DELETE, &path, Some(token), None).await
}

async fn preview(app: &TestApp, token: &str, query: &str) -> reqwest::Response {
    app.get(&format!("/api/v1/admin/cache/keys?{query}"), token)
        .await
}

/// Two users with cached entries, and their sessions.
async fn cached_users(app: &TestApp) -> (TestUser, TestUser) {
    let admin = app.admin("root").await;
    let alice = app.user("alice").await;
    for id in [admin.id, alice.id] {
        app.get(&format!("/api/v1/users/{id}"), &admin.token).await;
    }
    (admin, alice)
}

async fn key_count(app: &TestApp) -> usize {
    let keys = app.redis_keys().await;
    // Rate-limit counters come and go with every request, and a fill lease
    // is released in the background after its fill; count the rest.
    keys.iter()
        .filter(|key| !key.contains(":ratelimit:") && !key.contains(":lock:fill:"))
        .count()
}

on_both_databases! {
    async fn eviction_by_suffix_drops_one_users_entry(app) {
        let (admin, alice) = cached_users(&app).await;
        let response = evict(&app, &admin.token, &format!("suffix=:{}", alice.id)).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.json::<Value>().await.unwrap(), serde_json::json!({"deleted": 1}));
        let read = app.get(&format!("/api/v1/users/{}", alice.id), &admin.token).await;
        assert_eq!(read.headers()["x-cache"], "MISS");
        let other = app.get(&format!("/api/v1/users/{}", admin.id), &admin.token).await;
        assert_eq!(other.headers()["x-cache"], "HIT");
    }

    async fn glob_characters_match_only_themselves(app) {
        let (admin, alice) = cached_users(&app).await;
        let before = key_count(&app).await;
        for trap in ["*", "?", "[0-9]", "%5C", "*:1*", "%5C*", "user:*"] {
            let (status, error) = error_code(evict(&app, &admin.token, &format!("suffix={trap}")).await).await;
            assert_eq!((status, error["code"].as_str()), (404, Some("not_found")), "suffix {trap}");
            let (status, _) = error_code(evict(&app, &admin.token, &format!("prefix={trap}")).await).await;
            assert_eq!(status, 404, "prefix {trap}");
        }
        assert_eq!(key_count(&app).await, before, "nothing was deleted");
        assert_eq!(app.get("/api/v1/users/me", &alice.token).await.status(), 200);
    }

    async fn eviction_is_for_admins_with_exactly_one_valid_selector(app) {
        let (admin, alice) = cached_users(&app).await;
        let anonymous = app.request(Method::DELETE, "/api/v1/admin/cache/keys?prefix=user:", None, None).await;
        assert_eq!(anonymous.status(), 401);
        assert_eq!(error_code(evict(&app, &alice.token, "prefix=user:").await).await.0, 403);
        let long = format!("prefix={}", "x".repeat(257));
        for query in ["", "suffix=", "prefix=", "suffix=a&prefix=b", long.as_str()] {
            let (status, error) = error_code(evict(&app, &admin.token, query).await).await;
            assert_eq!((status, error["code"].as_str()), (422, Some("validation_failed")), "{query}");
        }
        let stats = app.get("/api/v1/admin/cache/stats", &alice.token).await;
        assert_eq!(stats.status(), 403);
    }

    async fn cache_stats_count_hits_misses_and_keys(app) {
        let (admin, _) = cached_users(&app).await;
        app.get(&format!("/api/v1/users/{}", admin.id), &admin.token).await;
        let stats: Value = app.get("/api/v1/admin/cache/stats", &admin.token).await.json().await.unwrap();
        assert_eq!(stats["keys"], 2);
        assert!(stats["hits"].as_u64().unwrap() >= 1);
        assert!(stats["misses"].as_u64().unwrap() >= 2);
        assert!(stats["hit_ratio"].as_f64().unwrap() > 0.0);
        assert_eq!(stats["ttl_seconds"], 300);
    }

    async fn the_preview_shows_what_the_eviction_then_deletes(app) {
        let (admin, alice) = cached_users(&app).await;
        let by_suffix: Value = preview(&app, &admin.token, &format!("suffix=:{}", alice.id)).await.json().await.unwrap();
        assert_eq!(by_suffix["count"], 1);
        assert_eq!(by_suffix["keys"], serde_json::json!([app.key(&format!("cache:user:{}", alice.id))]));
        let by_prefix: Value = preview(&app, &admin.token, "prefix=user:").await.json().await.unwrap();
        assert_eq!(by_prefix["count"], 2);
        let mut expected = vec![app.key(&format!("cache:user:{}", admin.id)), app.key(&format!("cache:user:{}", alice.id))];
        expected.sort();
        assert_eq!(by_prefix["keys"], serde_json::json!(expected), "in byte order");
        let one: Value = preview(&app, &admin.token, "prefix=user:&limit=1").await.json().await.unwrap();
        assert_eq!((one["count"].as_u64(), one["keys"].as_array().unwrap().len()), (Some(2), 1), "the count is of all keys");
        let before = key_count(&app).await;
        preview(&app, &admin.token, "prefix=user:").await;
        assert_eq!(key_count(&app).await, before, "a preview deletes nothing");
        let deleted: Value = evict(&app, &admin.token, "prefix=user:").await.json().await.unwrap();
        assert_eq!(deleted["deleted"], by_prefix["count"]);
        let after: Value = preview(&app, &admin.token, "prefix=user:").await.json().await.unwrap();
        assert_eq!(after, serde_json::json!({"count": 0, "keys": []}), "an empty match is an answer");
    }

    async fn the_preview_has_the_evictions_rules_and_matches_glob_characters_literally(app) {
        let (admin, alice) = cached_users(&app).await;
        let anonymous = app.request(Method::GET, "/api/v1/admin/cache/keys?prefix=user:", None, None).await;
        assert_eq!(anonymous.status(), 401);
        assert_eq!(error_code(preview(&app, &alice.token, "prefix=user:").await).await.0, 403);
        let long = format!("prefix={}", "x".repeat(257));
        for query in ["", "suffix=", "prefix=", "suffix=a&prefix=b", long.as_str(), "prefix=user:&limit=0", "prefix=user:&limit=101", "prefix=user:&limit=ten"] {
            let (status, error) = error_code(preview(&app, &admin.token, query).await).await;
            assert_eq!((status, error["code"].as_str()), (422, Some("validation_failed")), "{query}");
        }
        let (_, error) = error_code(preview(&app, &admin.token, "suffix=&limit=0").await).await;
        let fields: Vec<&str> = error["details"].as_array().unwrap().iter().map(|d| d["field"].as_str().unwrap()).collect();
        assert_eq!(fields, ["suffix", "limit"], "every invalid parameter is named");
        for trap in ["*", "?", "[0-9]", "%5C", "*:1*", "user:*"] {
            for selector in ["suffix", "prefix"] {
                let found: Value = preview(&app, &admin.token, &format!("{selector}={trap}")).await.json().await.unwrap();
                assert_eq!(found["count"], 0, "{selector} {trap}");
            }
        }
    }

    async fn create_admin_reads_the_password_from_stdin_and_promotes_existing_users(app) {
        let run = |username: &str| {
            let mut child = app
                .command()
                .args(["create-admin", "--username", username, "--email", &format!("{username}@example.com")])
                .stdin(Stdio::piped())
                .spawn()
                .unwrap();
            writeln!(child.stdin.take().unwrap(), "{PASSWORD}").unwrap();
            child.wait_with_output().unwrap()
        };
        let created = run("boss");
        assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
        assert!(String::from_utf8_lossy(&created.stdout).contains("created admin boss"));
        let token = app.login_token("boss", PASSWORD).await;
        assert_eq!(app.get("/api/v1/users", &token).await.status(), 200, "boss is an admin");

        let alice = app.user("alice").await;
        let promoted = run("alice");
        assert!(promoted.status.success());
        assert!(String::from_utf8_lossy(&promoted.stdout).contains("already existed and is now an admin"));
        assert_eq!(app.get("/api/v1/users/me", &alice.token).await.status(), 401, "old token carried the old role");
        let token = app.login_token("alice", PASSWORD).await;
        assert_eq!(app.get("/api/v1/users", &token).await.status(), 200);
    }

    async fn cache_evict_on_the_command_line_counts_and_deletes(app) {
        let (admin, _) = cached_users(&app).await;
        let run = |args: &[&str]| {
            let output = app.command().args(["cache", "evict"]).args(args).output().unwrap();
            (output.status.success(), String::from_utf8_lossy(&output.stdout).trim().to_string())
        };
        assert_eq!(run(&["--prefix", "user:", "--dry-run"]), (true, "would delete 2 keys".into()));
        assert_eq!(run(&["--suffix", &format!(":{}", admin.id)]), (true, "deleted 1 keys".into()));
        assert_eq!(run(&["--prefix", "user:"]), (true, "deleted 1 keys".into()));
        assert!(!run(&["--prefix", ""]).0, "an empty value is refused");
        assert_eq!(app.get("/api/v1/users/me", &admin.token).await.status(), 200);
        let audit: serde_json::Value = app
            .get("/api/v1/admin/audit?action=admin.cache_evicted", &admin.token)
            .await
            .json()
            .await
            .unwrap();
        let recorded: Vec<_> = audit["items"].as_array().unwrap().iter().map(|event| (event["details"]["deleted"].clone(), event["actor_id"].clone())).collect();
        assert_eq!(recorded, [(1.into(), serde_json::Value::Null), (1.into(), serde_json::Value::Null)], "each shell eviction is recorded, with no actor; the dry run is not");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prefix_eviction_of_20000_keys_counts_exactly_and_spares_sessions() {
    let app = crate::helpers::spawn_app(crate::helpers::Backend::Sqlite).await;
    let (admin, alice) = cached_users(&app).await;
    let connection = app.redis_connection().await;
    // One SET per key, a thousand at a time: a pipeline may not cross
    // slots on a cluster.
    let set = |key: String| {
        let mut connection = connection.clone();
        async move {
            redis::cmd("SET")
                .arg(key)
                .arg("x")
                .query_async::<()>(&mut connection)
                .await
        }
    };
    for chunk in (0..20_000).collect::<Vec<_>>().chunks(1000) {
        let writes = chunk
            .iter()
            .map(|n| set(app.key(&format!("cache:user:bulk{n}"))));
        futures_util::future::try_join_all(writes).await.unwrap();
    }
    set(app.key("jobs:not-a-cache-key")).await.unwrap();
    let response = evict(&app, &admin.token, "prefix=user:").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["deleted"], 20_002);
    assert_eq!(
        app.get("/api/v1/users/me", &alice.token).await.status(),
        200,
        "sessions survive"
    );
    assert!(
        app.redis_get(&app.key("jobs:not-a-cache-key"))
            .await
            .is_some()
    );
}
