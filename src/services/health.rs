//! Readiness: does each dependency answer, within a bound.

use std::time::Duration;

use serde::Serialize;

use crate::repositories::redis::RedisClient;
use crate::repositories::sql::Database;

const CHECK_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"status": "ready", "checks": {"redis": "ok", "database": "ok"}}))]
pub struct Readiness {
    pub status: ReadinessStatus,
    pub checks: Checks,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReadinessStatus {
    Ready,
    Unavailable,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Checks {
    pub redis: CheckState,
    pub database: CheckState,
}

/// One dependency's answer to its check (bounded to 1 s).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CheckState {
    Ok,
    Failing,
    Timeout,
}

#[derive(Clone)]
pub struct HealthService {
    database: Database,
    redis: RedisClient,
}

fn state<E: std::fmt::Display>(
    check: &str,
    result: Result<Result<(), E>, tokio::time::error::Elapsed>,
) -> CheckState {
    match result {
        Ok(Ok(())) => CheckState::Ok,
        Ok(Err(error)) => {
            tracing::warn!(check, error = %error, "readiness check failed");
            CheckState::Failing
        }
        Err(_) => {
            tracing::warn!(check, "readiness check timed out");
            CheckState::Timeout
        }
    }
}

impl HealthService {
    pub fn new(database: Database, redis: RedisClient) -> Self {
        Self { database, redis }
    }

    pub async fn readiness(&self) -> Readiness {
        let (redis, database) = tokio::join!(
            tokio::time::timeout(CHECK_TIMEOUT, self.redis.check_ready()),
            tokio::time::timeout(CHECK_TIMEOUT, self.database.ping()),
        );
        let checks = Checks {
            redis: state("redis", redis),
            database: state("database", database),
        };
        let ready = checks.redis == CheckState::Ok && checks.database == CheckState::Ok;
        Readiness {
            status: if ready {
                ReadinessStatus::Ready
            } else {
                ReadinessStatus::Unavailable
            },
            checks,
        }
    }
}
