//! Readiness: does each dependency answer, within a bound.

use std::time::Duration;

use serde::Serialize;

use crate::repositories::redis::RedisClient;
use crate::repositories::sql::Database;

const CHECK_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Readiness {
    pub status: &'static str,
    pub checks: Checks,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Checks {
    pub redis: &'static str,
    pub database: &'static str,
}

#[derive(Clone)]
pub struct HealthService {
    database: Database,
    redis: RedisClient,
}

fn state<E: std::fmt::Display>(
    check: &str,
    result: Result<Result<(), E>, tokio::time::error::Elapsed>,
) -> &'static str {
    match result {
        Ok(Ok(())) => "ok",
        Ok(Err(error)) => {
            tracing::warn!(check, error = %error, "readiness check failed");
            "failing"
        }
        Err(_) => {
            tracing::warn!(check, "readiness check timed out");
            "timeout"
        }
    }
}

impl HealthService {
    pub fn new(database: Database, redis: RedisClient) -> Self {
        Self { database, redis }
    }

    pub async fn readiness(&self) -> Readiness {
        let (redis, database) = tokio::join!(
            tokio::time::timeout(CHECK_TIMEOUT, self.redis.ping()),
            tokio::time::timeout(CHECK_TIMEOUT, self.database.ping()),
        );
        let checks = Checks {
            redis: state("redis", redis),
            database: state("database", database),
        };
        let ready = checks.redis == "ok" && checks.database == "ok";
        Readiness {
            status: if ready { "ready" } else { "unavailable" },
            checks,
        }
    }
}
