//! Hourly pruning of records nobody needs any more (ended sessions, spent
//! account tokens, audit events past their retention), run beside the job
//! workers and stopped with them.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use time::OffsetDateTime;
use tokio::sync::watch;

use crate::repositories::sql::{
    AccountTokenRepository, AuditRepository, SessionRepository, SqlError,
};

const EVERY: Duration = Duration::from_secs(3600);
const DAY_MS: i64 = 86_400_000;

/// One kind of record to prune: what it is (for the log) and how.
pub struct Prune {
    what: &'static str,
    run: Box<dyn Fn() -> BoxFuture<'static, Result<u64, SqlError>> + Send + Sync>,
}

impl Prune {
    /// Records of sessions that ended or expired more than a day ago (with
    /// them, their spent refresh-token hashes).
    pub fn sessions(repository: Arc<dyn SessionRepository>) -> Self {
        Self {
            what: "old session records",
            run: Box::new(move || {
                let repository = repository.clone();
                Box::pin(async move { repository.prune(now_ms() - DAY_MS).await })
            }),
        }
    }

    /// Verification and reset tokens that expired more than a day ago.
    pub fn account_tokens(repository: Arc<dyn AccountTokenRepository>) -> Self {
        Self {
            what: "expired account tokens",
            run: Box::new(move || {
                let repository = repository.clone();
                Box::pin(async move { repository.prune(now_ms() - DAY_MS).await })
            }),
        }
    }

    /// Audit events older than the retention.
    pub fn audit(repository: Arc<dyn AuditRepository>, retention: Duration) -> Self {
        Self {
            what: "old audit events",
            run: Box::new(move || {
                let repository = repository.clone();
                Box::pin(async move {
                    repository
                        .prune(OffsetDateTime::now_utc() - retention)
                        .await
                })
            }),
        }
    }

    /// Prunes every hour (the first time at once) until `stopped` turns true.
    pub async fn run(self, mut stopped: watch::Receiver<bool>) {
        let mut every_hour = tokio::time::interval(EVERY);
        loop {
            tokio::select! {
                _ = every_hour.tick() => {}
                _ = stopped.wait_for(|stop| *stop) => return,
            }
            match (self.run)().await {
                Ok(0) => {}
                Ok(pruned) => tracing::info!(pruned, "{} deleted", self.what),
                Err(error) => tracing::warn!(error = ?error, "pruning {} failed", self.what),
            }
        }
    }
}

fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}
