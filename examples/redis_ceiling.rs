//! The benchmark's ceiling (not part of the service): an actix-web server
//! that answers every request with exactly one Redis GET. The benchmark
//! reports the service's throughput as a ratio to this.
//!
//!     cargo run --release --example redis_ceiling -- PORT [deadpool|lanes]
//!
//! `deadpool` (the default) is the plain actix-web + deadpool-redis program:
//! one shared pool, a checkout per request (deadpool PINGs a connection on
//! every checkout). `lanes` goes through the service's own `RedisClient`.
//!
//! Uses BENCH_REDIS_URL (default redis://127.0.0.1:6379/14).

use actix_web::{App, HttpResponse, HttpServer, web};
use secrecy::SecretString;
use user_api::config::RedisSettings;
use user_api::repositories::redis::RedisClient;

const KEY: &str = "bench:ceiling:value";

async fn one_get(redis: web::Data<RedisClient>) -> HttpResponse {
    match redis
        .query::<Option<Vec<u8>>>(redis::cmd("GET").arg(KEY))
        .await
    {
        Ok(Some(body)) => HttpResponse::Ok()
            .content_type("application/json")
            .body(body),
        Ok(None) => HttpResponse::NotFound().finish(),
        Err(_) => HttpResponse::ServiceUnavailable().finish(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let port: u16 = std::env::args().nth(1).map_or(Ok(18081), |p| p.parse())?;
    let url =
        std::env::var("BENCH_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/14".into());
    let settings = RedisSettings {
        url: SecretString::from(url.clone()),
        key_prefix: "bench:".into(),
        pool_max_size: 16,
        pool_min_idle: 4,
        lanes: 2,
        wait_timeout_ms: 200,
        create_timeout_ms: 500,
        recycle_timeout_ms: 200,
        operation_timeout_ms: 300,
    };
    let redis = RedisClient::connect(&settings).await?;
    let user = r#"{"id":1,"username":"alice","email":"alice@example.com","role":"user","created_at":"2026-11-22T00:00:00Z","updated_at":"2026-11-22T00:00:00Z"}"#;
    redis
        .query::<()>(redis::cmd("SET").arg(KEY).arg(user))
        .await?;
    let data = web::Data::new(redis);
    HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .default_service(web::to(one_get))
    })
    .bind(("127.0.0.1", port))?
    .run()
    .await?;
    Ok(())
}
