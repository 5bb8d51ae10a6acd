//! Seeds a benchmark database with users `user1`..`userN`, all with the
//! password `benchmark-password` (one argon2id hash, computed once), and
//! `user1` an admin. Not part of the service.
//!
//!     cargo run --release --example bench_seed -- DATABASE_URL COUNT

use secrecy::SecretString;
use user_api::config::DatabaseSettings;
use user_api::repositories::sql::Database;
use user_api::services::passwords::{PasswordHasher, Priority};

/// One user row, on either backend.
async fn insert<'a, DB: sqlx::Database>(
    pool: &sqlx::Pool<DB>,
    sql: &'a str,
    (username, email, hash, role, now): (
        &'a String,
        &'a String,
        &'a String,
        &'a String,
        time::OffsetDateTime,
    ),
) -> Result<(), sqlx::Error>
where
    for<'q> <DB as sqlx::Database>::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    for<'c> &'c sqlx::Pool<DB>: sqlx::Executor<'c, Database = DB>,
    String: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    time::OffsetDateTime: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    sqlx::query(sql)
        .bind(username)
        .bind(email)
        .bind(hash)
        .bind(role)
        .bind(now)
        .execute(pool)
        .await
        .map(drop)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "sqlite://bench/data/bench.db".into());
    let count: i64 = args.next().map_or(Ok(10_000), |n| n.parse())?;
    let settings = DatabaseSettings {
        url: SecretString::from(url),
        max_connections: 4,
        acquire_timeout_ms: 10_000,
        statement_timeout_ms: 60_000,
    };
    let database = Database::connect(&settings).await?;
    database.migrate().await?;
    let hash = PasswordHasher::new(1, 1)?
        .hash("benchmark-password", Priority::Registration)
        .await
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    let now = time::OffsetDateTime::now_utc();
    let sql = "INSERT INTO users (username, email, password_hash, role, created_at, updated_at) \
               VALUES ($1, $2, $3, $4, $5, $5)";
    for n in 1..=count {
        let role = if n == 1 { "admin" } else { "user" };
        let (username, email) = (format!("user{n}"), format!("user{n}@example.com"));
        let role = role.to_string();
        let values = (&username, &email, &hash, &role, now);
        match &database {
            Database::Sqlite(pool) => insert(pool, sql, values).await,
            Database::Postgres(pool) => insert(pool, sql, values).await,
        }?;
    }
    println!("seeded {count} users");
    Ok(())
}
