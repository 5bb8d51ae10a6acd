//! Readiness: does each dependency answer, within a bound.

use std::time::Duration;

use crate::repositories::redis::RedisClient;
use crate::repositories::sql::Database;

const CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// Each dependency's answer to its check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checks {
    pub redis: CheckState,
    pub database: CheckState,
}

impl Checks {
    /// Whether every dependency answered.
    pub fn all_ok(&self) -> bool {
        self.redis == CheckState::Ok && self.database == CheckState::Ok
    }
}

/// One dependency's answer to its check (bounded to 1 s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

    pub async fn readiness(&self) -> Checks {
        let (redis, database) = tokio::join!(
            tokio::time::timeout(CHECK_TIMEOUT, self.redis.check_ready()),
            tokio::time::timeout(CHECK_TIMEOUT, self.database.ping()),
        );
        Checks {
            redis: state("redis", redis),
            database: state("database", database),
        }
    }
}
