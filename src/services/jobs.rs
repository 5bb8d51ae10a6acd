//! Background jobs: the outbox relay (SQL → Redis stream), the workers, and
//! the admin's view of the queue.

mod prune;
mod relay;
mod worker;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::sessions::Admin;
use crate::domain::QueueCounts;
use crate::error::AppError;
use crate::repositories::redis::JobQueue;
use crate::repositories::sql::OutboxRepository;
pub use prune::Prune;
pub use relay::OutboxRelay;
pub use worker::Worker;

/// The relay, workers and pruning of one process, and the switch that
/// stops them.
pub struct JobTasks {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl JobTasks {
    pub fn start(relay: OutboxRelay, workers: Vec<Worker>, prunes: Vec<Prune>) -> Self {
        let (stop, stopped) = watch::channel(false);
        let mut tasks = vec![tokio::spawn(relay.run(stopped.clone()))];
        tasks.extend(
            workers
                .into_iter()
                .map(|worker| tokio::spawn(worker.run(stopped.clone()))),
        );
        tasks.extend(
            prunes
                .into_iter()
                .map(|prune| tokio::spawn(prune.run(stopped.clone()))),
        );
        Self { stop, tasks }
    }

    /// Asks every task to stop and waits (up to `grace`) for jobs in
    /// progress to finish. A job cut off is redelivered later.
    pub async fn stop(self, grace: Duration) {
        let _ = self.stop.send(true);
        let all = futures_util::future::join_all(self.tasks);
        if tokio::time::timeout(grace, all).await.is_err() {
            tracing::warn!("job tasks did not stop in time; their jobs will be redelivered");
        }
    }
}

/// The queue's figures, and the outbox rows not done yet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobStats {
    pub queue: QueueCounts,
    /// Committed in SQL and not done yet (handed to Redis or not).
    pub outbox: u64,
}

/// Dead jobs moved back per replay script.
const REPLAY_BATCH: u64 = 500;

#[derive(Clone)]
pub struct JobService {
    queue: JobQueue,
    outbox: Arc<dyn OutboxRepository>,
}

impl JobService {
    pub fn new(queue: JobQueue, outbox: Arc<dyn OutboxRepository>) -> Self {
        Self { queue, outbox }
    }

    pub async fn stats(&self, _admin: Admin<'_>) -> Result<JobStats, AppError> {
        self.counts().await
    }

    pub async fn counts(&self) -> Result<JobStats, AppError> {
        Ok(JobStats {
            queue: self.queue.counts().await?,
            outbox: self.outbox.count().await?,
        })
    }

    /// Puts dead jobs back in the queue with fresh attempts.
    pub async fn replay_dead(&self, limit: u64) -> Result<u64, AppError> {
        Ok(self.queue.replay_dead(limit).await?)
    }

    /// The HTTP entry point: admins only; every job dead now goes back, in
    /// batches so that no single script holds Redis for long. Jobs that
    /// die while this runs wait for the next replay.
    pub async fn replay_all_dead_as(&self, _admin: Admin<'_>) -> Result<u64, AppError> {
        let mut left = self.queue.counts().await?.dead;
        let mut replayed = 0;
        while left > 0 {
            let moved = self.queue.replay_dead(left.min(REPLAY_BATCH)).await?;
            if moved == 0 {
                break;
            }
            replayed += moved;
            left -= moved;
        }
        tracing::info!(replayed, "dead jobs replayed");
        Ok(replayed)
    }
}
