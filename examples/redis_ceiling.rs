//! The benchmark's ceiling (not part of the service): an actix-web server
//! that answers every request with exactly one Redis GET. The benchmark
//! reports the service's throughput as a ratio to this.
//!
//!     cargo run --release --example redis_ceiling -- PORT [deadpool|deadpool-per-worker|lanes|cluster|cluster-two|constant]
//!
//! `deadpool` (the default) is the plain actix-web + deadpool-redis program:
//! one shared pool, a checkout per request (deadpool PINGs a connection on
//! every checkout); `deadpool-per-worker` builds one such pool per actix
//! worker (the common way to write it well). `lanes` goes through the service's
//! own `RedisClient`. `cluster` is `lanes` on the Redis Cluster named by
//! BENCH_REDIS_CLUSTER_NODES; `cluster-two` sends two GETs at once there, to
//! keys in different slots: what the service's session check and cache read
//! cost on a cluster, where they cannot share one round trip to one node.
//! `constant` answers the same body without Redis: what wrk and actix-web
//! can do on this machine at all, the bound on anything served from memory.
//!
//! Uses BENCH_REDIS_URL (default redis://127.0.0.1:6379/14).

use actix_web::{App, HttpResponse, HttpServer, web};
use user_api::config::RedisSettings;
use user_api::repositories::redis::RedisClient;

const KEY: &str = "bench:ceiling:value";

const USER: &str = r#"{"id":1,"username":"alice","email":"alice@example.com","role":"user","created_at":"2026-11-22T00:00:00Z","updated_at":"2026-11-22T00:00:00Z"}"#;

async fn constant() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(USER)
}

/// A key in another slot than [`KEY`] (11609 against 7160), for
/// `cluster-two`: on another master with the three-way slot split of
/// `redis-cli --cluster create`, as bench/run makes its cluster.
const OTHER_KEY: &str = "bench:ceiling:other";

async fn two_gets(redis: web::Data<RedisClient>) -> HttpResponse {
    let mut first = redis::cmd("GET");
    first.arg(KEY);
    let mut second = redis::cmd("GET");
    second.arg(OTHER_KEY);
    let (value, other) = tokio::join!(
        redis.query::<Option<Vec<u8>>>(&first),
        redis.query::<Option<Vec<u8>>>(&second)
    );
    match other {
        Ok(Some(_)) => answer(value.map_err(drop)),
        _ => HttpResponse::ServiceUnavailable().finish(),
    }
}

async fn one_get(redis: web::Data<RedisClient>) -> HttpResponse {
    answer(
        redis
            .query::<Option<Vec<u8>>>(redis::cmd("GET").arg(KEY))
            .await
            .map_err(drop),
    )
}

/// The plain program: one deadpool pool shared by every worker, a
/// checkout per request.
async fn one_get_deadpool(pool: web::Data<deadpool_redis::Pool>) -> HttpResponse {
    let Ok(mut connection) = pool.get().await else {
        return HttpResponse::ServiceUnavailable().finish();
    };
    answer(
        redis::cmd("GET")
            .arg(KEY)
            .query_async::<Option<Vec<u8>>>(&mut connection)
            .await
            .map_err(drop),
    )
}

fn answer(value: Result<Option<Vec<u8>>, ()>) -> HttpResponse {
    match value {
        Ok(Some(body)) => HttpResponse::Ok()
            .content_type("application/json")
            .body(body),
        Ok(None) => HttpResponse::NotFound().finish(),
        Err(()) => HttpResponse::ServiceUnavailable().finish(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let port: u16 = std::env::args().nth(1).map_or(Ok(18081), |p| p.parse())?;
    let mode = std::env::args().nth(2).unwrap_or_else(|| "deadpool".into());
    let url =
        std::env::var("BENCH_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/14".into());
    let mut settings = RedisSettings {
        operation_timeout_ms: 300,
        ..RedisSettings::for_tool(&url, "bench:")
    };
    if mode.starts_with("cluster") {
        settings.cluster_nodes = std::env::var("BENCH_REDIS_CLUSTER_NODES")?.into();
    }
    let redis = RedisClient::connect(&settings).await?;
    for key in [KEY, OTHER_KEY] {
        redis
            .query::<()>(redis::cmd("SET").arg(key).arg(USER))
            .await?;
    }
    let client = web::Data::new(redis);
    let new_pool = move || {
        deadpool_redis::Config::from_url(url.clone())
            .create_pool(Some(deadpool_redis::Runtime::Tokio1))
            .map(web::Data::new)
    };
    let shared_pool = new_pool()?;
    HttpServer::new(move || {
        // Per worker: built here, inside the factory, which runs on each worker.
        let pool = if mode == "deadpool-per-worker" {
            new_pool().unwrap_or_else(|_| shared_pool.clone())
        } else {
            shared_pool.clone()
        };
        let app = App::new().app_data(client.clone()).app_data(pool);
        match mode.as_str() {
            "constant" => app.default_service(web::to(constant)),
            "lanes" | "cluster" => app.default_service(web::to(one_get)),
            "cluster-two" => app.default_service(web::to(two_gets)),
            _ => app.default_service(web::to(one_get_deadpool)),
        }
    })
    .bind(("127.0.0.1", port))?
    .run()
    .await?;
    Ok(())
}
