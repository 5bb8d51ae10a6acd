//! The workers' hourly pruning, which also runs as soon as they start:
//! records past their time go, the rest stay.

use std::time::{Duration, Instant};

use time::OffsetDateTime;
use user_api::repositories::sql::Database;

use crate::helpers::{Backend, PASSWORD, TestApp, spawn_app_with};
use crate::on_both_databases;

const DAY_MS: i64 = 86_400_000;

fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// Runs one statement with one bound value.
async fn execute<T>(app: &TestApp, sql: &str, value: T)
where
    T: for<'q> sqlx::Encode<'q, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
    T: for<'q> sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
    T: Send + 'static,
{
    match &app.database {
        Database::Sqlite(pool) => sqlx::query(sql).bind(value).execute(pool).await.map(drop),
        Database::Postgres(pool) => sqlx::query(sql).bind(value).execute(pool).await.map(drop),
    }
    .expect(sql);
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    match &app.database {
        Database::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
        Database::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
    }
    .expect(sql)
}

/// (sessions, account tokens, `user.registered` events) in SQL.
async fn counts(app: &TestApp) -> (i64, i64, i64) {
    (
        count(app, "SELECT COUNT(*) FROM sessions").await,
        count(app, "SELECT COUNT(*) FROM account_tokens").await,
        count(
            app,
            "SELECT COUNT(*) FROM audit_events WHERE action = 'user.registered'",
        )
        .await,
    )
}

on_both_databases! {
    async fn starting_workers_prune_old_sessions_tokens_and_audit_events_and_keep_the_rest(app) {
        app.user("alice").await;
        // Single login: the second login ends the first session.
        let token = app.login_token("alice", PASSWORD).await;
        app.register("bob").await;
        // The worker makes each registration's verification token as it
        // mails the link: wait for both.
        let started = Instant::now();
        while counts(&app).await != (2, 2, 2) {
            assert!(started.elapsed() < Duration::from_secs(10), "{:?}", counts(&app).await);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        // Age alice's ended session, every token, and alice's registration
        // past their keeping time.
        let two_days_ago = now_ms() - 2 * DAY_MS;
        execute(&app, "UPDATE sessions SET ended_at_ms = $1 WHERE ended_at_ms IS NOT NULL", two_days_ago).await;
        execute(&app, "UPDATE account_tokens SET expires_at_ms = $1", two_days_ago).await;
        let long_ago = OffsetDateTime::now_utc() - time::Duration::days(400);
        execute(&app, "UPDATE audit_events SET at = $1 WHERE action = 'user.registered' \
            AND subject_id = (SELECT id FROM users WHERE username = 'alice')", long_ago).await;

        // A second instance on the same database prunes as its workers start.
        let (url, prefix) = (app.settings.database.url.clone(), app.settings.redis.key_prefix.clone());
        let _other = spawn_app_with(Backend::Sqlite, |settings| {
            settings.database.url = url;
            settings.redis.key_prefix = prefix;
        })
        .await;
        let started = Instant::now();
        while counts(&app).await != (1, 0, 1) {
            assert!(started.elapsed() < Duration::from_secs(10), "not pruned: {:?}", counts(&app).await);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(app.get("/api/v1/users/me", &token).await.status(), 200, "the live session stays");
    }
}
