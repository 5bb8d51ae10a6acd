//! The per-user update lock and its fencing token.

use std::time::Duration;

use serde_json::{Value, json};
use user_api::domain::UserId;
use user_api::error::AppError;
use user_api::repositories::redis::{Acquisition, Keys, LockStore, RedisClient};
use user_api::repositories::sql::{Fenced, UserChanges};
use user_api::services::locks::LockService;

use crate::helpers::{TestApp, error_code};
use crate::on_both_databases;

async fn lock_store(app: &TestApp) -> (LockStore, Keys) {
    let client = RedisClient::connect(&app.settings.redis).await.unwrap();
    (
        LockStore::new(client),
        Keys::new(&app.settings.redis.key_prefix),
    )
}

on_both_databases! {
    async fn concurrent_updates_of_one_user_get_200_or_409_and_the_cache_matches_the_row(app) {
        let alice = app.user("alice").await;
        let path = format!("/api/v1/users/{}", alice.id);
        let updates = (0..24).map(|n| {
            let request = app.client.put(app.url(&path)).bearer_auth(&alice.token)
                .json(&json!({"username": format!("alice-{n}")}));
            async move { request.send().await.unwrap() }
        });
        let responses = futures_util::future::join_all(updates).await;
        let mut ok = 0;
        for response in responses {
            match response.status().as_u16() {
                200 => ok += 1,
                409 => {
                    assert!(response.headers().contains_key("retry-after"));
                    assert_eq!(error_code(response).await.1["code"], "update_in_progress");
                }
                other => panic!("unexpected status {other}"),
            }
        }
        assert!(ok >= 1);
        let row = app.database.users().find(UserId(alice.id)).await.unwrap().unwrap();
        let read: Value = app.get(&path, &alice.token).await.json().await.unwrap();
        assert_eq!(read, serde_json::to_value(&row).unwrap());
        let cached = app.redis_get(&app.key(&format!("cache:user:{}", alice.id))).await.unwrap();
        // "<version>:<digests>:<json of the user's own view>\n<json of the public view>"
        let body = cached.splitn(3, ':').nth(2).unwrap();
        let private = body.split('\n').next().unwrap();
        assert_eq!(serde_json::from_str::<Value>(private).unwrap(), serde_json::to_value(&row).unwrap());
    }

    async fn an_update_while_the_lock_is_held_gets_409_with_retry_after(app) {
        let alice = app.user("alice").await;
        let (store, keys) = lock_store(&app).await;
        let lock = keys.user_lock(UserId(alice.id));
        let held = store.acquire(&lock, "someone-else", Duration::from_secs(3)).await.unwrap();
        assert!(matches!(held, Acquisition::Held { .. }));
        let path = format!("/api/v1/users/{}", alice.id);
        let response = app.put(&path, &alice.token, json!({"username": "alice2"})).await;
        assert_eq!(response.status(), 409);
        let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=3).contains(&retry_after), "{retry_after}");
        assert!(store.release(&lock, "someone-else").await.unwrap());
        assert_eq!(app.put(&path, &alice.token, json!({"username": "alice2"})).await.status(), 200);
    }

    async fn a_holder_paused_past_its_lease_cannot_overwrite_newer_data(app) {
        let event = |id| user_api::services::audit::event("user.updated", None, Some(id), serde_json::json!({}));
        let alice = app.user("alice").await;
        let id = UserId(alice.id);
        let (store, keys) = lock_store(&app).await;
        // No watchdog extension: the lease simply runs out, as for a paused process.
        let contention = prometheus::IntCounter::new("contention", "test").unwrap();
        let locks = LockService::new(store, Duration::from_millis(200), Duration::from_millis(100), contention);
        let users = app.database.users();
        let slow = locks.run_exclusive(keys.user_lock(id), AppError::UpdateInProgress, async |fence| {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let changes = UserChanges { username: Some("from-the-paused-holder"), ..Default::default() };
            match users.update(id, changes, time::OffsetDateTime::now_utc(), fence.0, &[event(id)]).await.unwrap() {
                Fenced::Stale => Err::<(), _>(AppError::UpdateInProgress(Duration::ZERO)),
                other => panic!("the late write went through: {other:?}"),
            }
        });
        let fast = async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            locks.run_exclusive(keys.user_lock(id), AppError::UpdateInProgress, async |fence| {
                let changes = UserChanges { username: Some("from-the-next-holder"), ..Default::default() };
                Ok(users.update(id, changes, time::OffsetDateTime::now_utc(), fence.0, &[event(id)]).await.unwrap())
            })
            .await
        };
        let (slow, fast) = tokio::join!(slow, fast);
        assert!(matches!(slow, Err(AppError::UpdateInProgress(_))));
        assert!(matches!(fast, Ok(Fenced::Applied(_))));
        let row = users.find(id).await.unwrap().unwrap();
        assert_eq!(row.username, "from-the-next-holder");
    }
}

#[tokio::test]
async fn only_the_owner_releases_or_extends_a_lock() {
    let app = crate::helpers::spawn_app(crate::helpers::Backend::Sqlite).await;
    let (store, keys) = lock_store(&app).await;
    let lock = keys.user_lock(UserId(1));
    let Acquisition::Held { fence: first } = store
        .acquire(&lock, "owner", Duration::from_secs(5))
        .await
        .unwrap()
    else {
        panic!("the lock was free");
    };
    assert!(matches!(
        store
            .acquire(&lock, "intruder", Duration::from_secs(5))
            .await
            .unwrap(),
        Acquisition::Busy { .. }
    ));
    assert!(!store.release(&lock, "intruder").await.unwrap());
    assert!(
        !store
            .extend(&lock, "intruder", Duration::from_secs(60))
            .await
            .unwrap()
    );
    assert!(
        store
            .extend(&lock, "owner", Duration::from_secs(5))
            .await
            .unwrap()
    );
    assert!(store.release(&lock, "owner").await.unwrap());
    let Acquisition::Held { fence: second } = store
        .acquire(&lock, "next", Duration::from_secs(5))
        .await
        .unwrap()
    else {
        panic!("the lock was released");
    };
    assert!(second > first, "fencing tokens grow");
    // The last token does not outlive its user forever.
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&lock.fence)
        .query_async(&mut app.redis_connection().await)
        .await
        .unwrap();
    assert!(
        ttl > 3_600_000,
        "the fence key expires, a while after its last use: {ttl}"
    );
}
