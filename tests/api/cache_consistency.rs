use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use user_api::domain::UserId;
use user_api::repositories::redis::{CacheStore, RedisClient};

use crate::on_both_databases;

async fn cache_loads(app: &crate::helpers::TestApp) -> i64 {
    app.metric("user_api_cache_loads_total").await
}

on_both_databases! {
    async fn a_cold_user_read_at_once_on_two_instances_is_loaded_once(app) {
        let alice = app.user("alice").await;
        let (url, prefix) = (app.settings.database.url.clone(), app.settings.redis.key_prefix.clone());
        let other = crate::helpers::spawn_app_with(crate::helpers::Backend::Sqlite, |settings| {
            settings.database.url = url;
            settings.redis.key_prefix = prefix;
        })
        .await;
        let before = cache_loads(&app).await + cache_loads(&other).await;
        let path = format!("/api/v1/users/{}", alice.id);
        let reads = (0..100).map(|n| {
            let instance = if n % 2 == 0 { &app } else { &other };
            let request = instance.client.get(instance.url(&path)).bearer_auth(&alice.token);
            async move { request.send().await.unwrap().status() }
        });
        let statuses = futures_util::future::join_all(reads).await;
        assert!(statuses.iter().all(|status| *status == 200));
        let loads = cache_loads(&app).await + cache_loads(&other).await - before;
        assert_eq!(loads, 1, "one SQL query for both instances");
    }

    async fn two_hundred_concurrent_reads_of_a_cold_user_query_sql_once(app) {
        let alice = app.user("alice").await;
        let before = cache_loads(&app).await;
        let url = app.url(&format!("/api/v1/users/{}", alice.id));
        let reads = (0..200).map(|_| {
            let request = app.client.get(&url).bearer_auth(&alice.token);
            async move { request.send().await.unwrap().status() }
        });
        let statuses = futures_util::future::join_all(reads).await;
        assert!(statuses.iter().all(|status| *status == 200));
        assert_eq!(cache_loads(&app).await - before, 1, "one SQL query for 200 concurrent misses");
    }

    async fn racing_reads_and_updates_leave_the_cache_equal_to_the_database(app) {
        let alice = app.user("alice").await;
        let path = format!("/api/v1/users/{}", alice.id);
        let stop = Arc::new(AtomicBool::new(false));
        let mut readers = Vec::new();
        for _ in 0..6 {
            let (client, url, token, stop) = (app.client.clone(), app.url(&path), alice.token.clone(), stop.clone());
            readers.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let status = client.get(&url).bearer_auth(&token).send().await.unwrap().status();
                    assert_eq!(status, 200);
                }
            }));
        }
        for round in 0..25 {
            let response = app.put(&path, &alice.token, json!({"username": format!("alice-{round}")})).await;
            assert_eq!(response.status(), 200);
            // Once the 200 is sent, no reader gets the old data.
            let read: Value = app.get(&path, &alice.token).await.json().await.unwrap();
            assert_eq!(read["username"], format!("alice-{round}"));
        }
        stop.store(true, Ordering::Relaxed);
        for reader in readers {
            reader.await.unwrap();
        }
        let row = app.database.users().find(UserId(alice.id)).await.unwrap().unwrap();
        let cached = app.redis_get(&app.key(&format!("cache:user:{}", alice.id))).await.unwrap();
        let (_, rest) = cached.split_once(':').unwrap();
        if let Some((_, body)) = rest.split_once(':') {
            // The first line is the view the user and admins see.
            let private = body.split('\n').next().unwrap();
            assert_eq!(serde_json::from_str::<Value>(private).unwrap(), serde_json::to_value(&row).unwrap());
        }
        let read: Value = app.get(&path, &alice.token).await.json().await.unwrap();
        assert_eq!(read, serde_json::to_value(&row).unwrap());
    }

    async fn a_reader_holding_an_old_row_cannot_write_it_back_after_an_invalidation(app) {
        let store = CacheStore::new(RedisClient::connect(&app.settings.redis).await.unwrap());
        let key = app.key("cache:user:1");
        let ttl = Duration::from_secs(60);
        // An update committed version 2 and left its tombstone...
        assert!(store.put_unless_newer(&key, 2, None, ttl).await.unwrap());
        // ...so a reader that loaded version 1 before the commit loses.
        assert!(!store.put_unless_newer(&key, 1, Some(("d1", b"{\"old\":true}")), ttl).await.unwrap());
        let entry = store.get(&key).await.unwrap().unwrap();
        assert_eq!((entry.version, entry.value), (2, None));
        // A reader of version 2 fills the entry.
        assert!(store.put_unless_newer(&key, 2, Some(("d2", b"{\"new\":true}")), ttl).await.unwrap());
        let (_, body) = store.get(&key).await.unwrap().unwrap().value.unwrap();
        assert_eq!(body, b"{\"new\":true}");
    }
}
