//! Starting on the database of the previous release: its migrations (those
//! before this release's first), an account written as it wrote them, and
//! an access token in its format (no session id). The account logs in as
//! before with the new fields' defaults; the old token answers 401 (log in
//! again), never 500.

use std::path::PathBuf;
use std::str::FromStr;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use sqlx::migrate::Migrator;
use sqlx::sqlite::SqliteConnectOptions;
use user_api::services::passwords::{PasswordHasher, Priority};

use crate::helpers::{Backend, TestDatabase, error_code, spawn_app_with};

/// This release's first migration; the previous release had those before.
const FIRST_NEW_MIGRATION: i64 = 20_261_201_000_000;
const OLD_PASSWORD: &str = "set before the upgrade";

async fn previous_release_migrator(backend: Backend) -> Migrator {
    let folder = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(folder);
    let mut migrator = Migrator::new(path.as_path()).await.unwrap();
    let old: Vec<_> = migrator
        .migrations
        .iter()
        .filter(|migration| migration.version < FIRST_NEW_MIGRATION)
        .cloned()
        .collect();
    assert!(!old.is_empty() && old.len() < migrator.migrations.len());
    migrator.migrations = old.into();
    migrator
}

/// The previous release's schema with one account in it, as it wrote one.
async fn previous_release_database(backend: Backend) -> TestDatabase {
    let database = TestDatabase::create(backend).await;
    let migrator = previous_release_migrator(backend).await;
    let hash = PasswordHasher::new(1, 1)
        .unwrap()
        .hash(OLD_PASSWORD, Priority::Registration)
        .await
        .unwrap();
    let insert = "INSERT INTO users (username, email, password_hash, role, created_at, updated_at) \
                  VALUES ('olduser', 'olduser@example.com', $1, 'user', $2, $2)";
    let now = time::OffsetDateTime::now_utc();
    match backend {
        Backend::Sqlite => {
            let options = SqliteConnectOptions::from_str(&database.url)
                .unwrap()
                .create_if_missing(true);
            let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
            migrator.run(&pool).await.unwrap();
            sqlx::query(insert)
                .bind(&hash)
                .bind(now)
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&database.url).await.unwrap();
            migrator.run(&pool).await.unwrap();
            sqlx::query(insert)
                .bind(&hash)
                .bind(now)
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
    }
    database
}

async fn an_account_of_the_previous_release_logs_in_and_its_old_token_gets_401(backend: Backend) {
    let database = previous_release_database(backend).await;
    let url = database.url.clone();
    let app = spawn_app_with(backend, |settings| {
        settings.database.url = SecretString::from(url);
    })
    .await;

    let login = app.login("olduser", OLD_PASSWORD).await;
    assert_eq!(
        login.status(),
        200,
        "the password set before the upgrade works"
    );
    let tokens: Value = login.json().await.unwrap();
    let me: Value = app
        .get("/api/v1/users/me", tokens["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["username"], "olduser");
    assert_eq!(me["email"], "olduser@example.com");
    assert_eq!(
        (&me["email_verified"], &me["disabled"]),
        (&json!(false), &json!(false))
    );

    // The previous release's access token: no `sid`.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims = json!({"sub": me["id"].to_string(), "exp": now + 600, "iat": now,
        "jti": "issued-before-the-upgrade", "role": "user"});
    let secret = app.settings.auth.jwt_secret.expose_secret().as_bytes();
    let old_token = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap();
    for path in [
        "/api/v1/users/me".to_string(),
        format!("/api/v1/users/{}", me["id"]),
    ] {
        let (status, error) = error_code(app.get(&path, &old_token).await).await;
        assert_eq!(
            (status, error["code"].as_str()),
            (401, Some("unauthorized")),
            "{path}"
        );
    }
    drop(database);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_of_the_previous_release_logs_in_and_its_old_token_gets_401_on_sqlite() {
    an_account_of_the_previous_release_logs_in_and_its_old_token_gets_401(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_of_the_previous_release_logs_in_and_its_old_token_gets_401_on_postgres() {
    an_account_of_the_previous_release_logs_in_and_its_old_token_gets_401(Backend::Postgres).await;
}
