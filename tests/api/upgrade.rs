//! Starting on the Redis of the previous release: its job queue had keys
//! without hash tags (`{prefix}jobs:stream`, `jobs:delayed`, `jobs:dead`,
//! `jobs:counters`, `jobs:done:{id}`); none of its jobs may be lost.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{Backend, spawn_app_with, test_redis_url, test_settings};
use crate::mailbox::{mail_to_files, wait_for};

fn welcome(id: &str, to: &str) -> String {
    json!({"id": id, "attempt": 0, "kind": "welcome_email", "to": to, "username": id}).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_queued_by_the_previous_release_are_delivered_after_the_upgrade() {
    let prefix = test_settings().redis.key_prefix;
    let old = |name: &str| format!("{prefix}jobs:{name}");
    let redis = redis::Client::open(test_redis_url()).unwrap();
    let mut connection = redis.get_multiplexed_async_connection().await.unwrap();
    // The previous release's queue: a job waiting in the stream, one taken
    // by a worker that then died (in flight), one due for a retry, one
    // dead, totals, and the done marker of a job already sent.
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(old("stream"))
        .arg("workers")
        .arg("0")
        .arg("MKSTREAM")
        .query_async(&mut connection)
        .await
        .unwrap();
    for (id, to) in [
        ("waiting", "waiting@example.com"),
        ("inflight", "inflight@example.com"),
    ] {
        let _: String = redis::cmd("XADD")
            .arg(old("stream"))
            .arg("*")
            .arg("job")
            .arg(welcome(id, to))
            .query_async(&mut connection)
            .await
            .unwrap();
    }
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("workers")
        .arg("old-worker")
        .arg("COUNT")
        .arg(1)
        .arg("STREAMS")
        .arg(old("stream"))
        .arg(">")
        .query_async(&mut connection)
        .await
        .unwrap();
    let _: () = redis::pipe()
        .cmd("ZADD")
        .arg(old("delayed"))
        .arg(1)
        .arg(welcome("retry", "retry@example.com"))
        .ignore()
        .cmd("LPUSH")
        .arg(old("dead"))
        .arg(json!({"job": serde_json::from_str::<Value>(&welcome("dead", "dead@example.com")).unwrap(), "entry": "1-0", "error": "refused"}).to_string())
        .ignore()
        .cmd("HSET")
        .arg(old("counters"))
        .arg("delivered")
        .arg(7)
        .arg("retried")
        .arg(3)
        .ignore()
        .cmd("SET")
        .arg(old("done:sent-before"))
        .arg(1)
        .arg("EX")
        .arg(600)
        .ignore()
        .query_async(&mut connection)
        .await
        .unwrap();

    let app = spawn_app_with(Backend::Sqlite, |settings| {
        settings.redis.key_prefix = prefix.clone();
        settings.jobs.retry_base_ms = 50;
        settings.jobs.retry_max_ms = 200;
        mail_to_files(settings);
    })
    .await;
    for to in [
        "waiting@example.com",
        "inflight@example.com",
        "retry@example.com",
    ] {
        wait_for(&app, to, "Welcome", 1).await;
    }
    let exists = |key: String| {
        let redis = redis.clone();
        async move {
            let mut connection = redis.get_multiplexed_async_connection().await.unwrap();
            redis::cmd("EXISTS")
                .arg(key)
                .query_async::<bool>(&mut connection)
                .await
                .unwrap()
        }
    };
    for name in ["stream", "delayed", "dead", "counters", "done:sent-before"] {
        assert!(!exists(old(name)).await, "{} is still there", old(name));
    }
    assert!(exists(app.key("jobs:{default}:done:sent-before")).await);
    // The dead job waits for a replay, with its error, under the new name.
    let dead: Vec<String> = redis::cmd("LRANGE")
        .arg(app.key("jobs:{default}:dead"))
        .arg(0)
        .arg(-1)
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert!(dead[0].contains("dead@example.com"));
    let admin = app.admin("root").await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let stats: Value = app
            .get("/api/v1/admin/jobs/stats", &admin.token)
            .await
            .json()
            .await
            .unwrap();
        // 7 before the upgrade, 3 since, and the admin's own welcome.
        if stats["delivered"].as_u64() >= Some(10) {
            assert_eq!(stats["dead"], 1, "{stats}");
            break;
        }
        assert!(Instant::now() < deadline, "{stats}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
