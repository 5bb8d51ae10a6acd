//! The outbox relay: SQL → Redis stream.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::error::AppError;
use crate::repositories::redis::JobQueue;
use crate::repositories::sql::OutboxRepository;
use crate::services::outbox::OutboxSignal;

/// Hands jobs committed to the SQL outbox to the Redis queue and notes
/// when; the worker removes a job from the outbox once it is done. A job
/// still there long after it was handed over (Redis lost it, say) is handed
/// over again. So a job is relayed at least once, and the worker recognises
/// repeats.
pub struct OutboxRelay {
    outbox: Arc<dyn OutboxRepository>,
    queue: JobQueue,
    signal: OutboxSignal,
    relay_again_after: Duration,
}

impl OutboxRelay {
    pub fn new(
        outbox: Arc<dyn OutboxRepository>,
        queue: JobQueue,
        signal: OutboxSignal,
        relay_again_after: Duration,
    ) -> Self {
        Self {
            outbox,
            queue,
            signal,
            relay_again_after,
        }
    }

    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        while !*stop.borrow() {
            if let Err(error) = self.relay_waiting().await {
                tracing::warn!(error = %error, "outbox relay failed; retrying");
            }
            tokio::select! {
                _ = self.signal.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stop.changed() => {}
            }
        }
    }

    async fn relay_waiting(&self) -> Result<(), AppError> {
        loop {
            let now = time::OffsetDateTime::now_utc();
            let jobs = self.outbox.due(now - self.relay_again_after, 100).await?;
            if jobs.is_empty() {
                return Ok(());
            }
            for job in jobs {
                self.queue.enqueue(&job).await?;
                self.outbox.mark_relayed(&job.id, now).await?;
            }
        }
    }
}
