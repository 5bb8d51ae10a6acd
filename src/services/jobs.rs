//! Background jobs: the outbox relay (SQL → Redis stream), the workers, and
//! the admin's view of the queue.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use super::account_mail::AccountMailer;
use super::auth::Principal;
use crate::config::{JobSettings, RedisSettings};
use crate::domain::Job;
use crate::error::AppError;
use crate::repositories::redis::{BlockingConnection, Delivery, JobQueue, QueueCounts};
use crate::repositories::sql::OutboxRepository;

/// Wakes the relay as soon as a job was committed to the outbox.
#[derive(Clone, Default)]
pub struct OutboxSignal(Arc<Notify>);

impl OutboxSignal {
    pub fn notify(&self) {
        self.0.notify_one();
    }
}

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
                _ = self.signal.0.notified() => {}
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

/// Takes jobs from the stream and does them, one at a time.
pub struct Worker {
    queue: JobQueue,
    outbox: Arc<dyn OutboxRepository>,
    mail: AccountMailer,
    settings: JobSettings,
    redis: RedisSettings,
    consumer: String,
}

const BLOCK: Duration = Duration::from_secs(1);

impl Worker {
    pub fn new(
        queue: JobQueue,
        outbox: Arc<dyn OutboxRepository>,
        mail: AccountMailer,
        settings: JobSettings,
        redis: RedisSettings,
        consumer: String,
    ) -> Self {
        Self {
            queue,
            outbox,
            mail,
            settings,
            redis,
            consumer,
        }
    }

    fn visibility_timeout(&self) -> Duration {
        Duration::from_secs(self.settings.visibility_timeout_seconds)
    }

    /// Works until `stop` turns true. A job in progress is finished first;
    /// waits for new jobs last at most one second, so stopping is quick.
    pub async fn run(self, stop: watch::Receiver<bool>) {
        tracing::info!(consumer = %self.consumer, "worker started");
        let mut connection = None;
        let mut last_claim: Option<tokio::time::Instant> = None;
        while !*stop.borrow() {
            let Some(blocking) = connection.as_mut() else {
                match BlockingConnection::open(&self.redis, BLOCK).await {
                    Ok(opened) => connection = Some(opened),
                    Err(error) => {
                        tracing::warn!(error = %error, "worker cannot reach Redis; retrying");
                        tokio::time::sleep(BLOCK).await;
                    }
                }
                continue;
            };
            if let Err(error) = self.queue.promote_due().await {
                tracing::warn!(error = %error, "moving due retries failed");
            }
            let claim_due =
                last_claim.is_none_or(|at| at.elapsed() >= self.visibility_timeout() / 2);
            if claim_due {
                last_claim = Some(tokio::time::Instant::now());
                match self
                    .queue
                    .claim_stale(&self.consumer, self.visibility_timeout())
                    .await
                {
                    Ok(claimed) => {
                        for delivery in claimed {
                            tracing::info!(entry = %delivery.entry_id, "took over an abandoned job");
                            self.process(delivery).await;
                        }
                    }
                    Err(error) => tracing::warn!(error = %error, "claiming abandoned jobs failed"),
                }
            }
            match self.queue.next(blocking, &self.consumer, BLOCK).await {
                Ok(Some(delivery)) => self.process(delivery).await,
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(error = %error, "reading the job stream failed; reconnecting");
                    connection = None;
                    tokio::time::sleep(BLOCK).await;
                }
            }
        }
        tracing::info!(consumer = %self.consumer, "worker stopped");
    }

    async fn process(&self, delivery: Delivery) {
        let job = match &delivery.job {
            Ok(job) => job.clone(),
            Err(reason) => {
                tracing::error!(entry = %delivery.entry_id, reason, "unreadable job; dead-lettered");
                log_failure(self.queue.bury(&delivery, None, reason).await);
                return;
            }
        };
        // Handed out again and again without an answer: it kills workers.
        if delivery.deliveries > u64::from(self.settings.max_attempts) {
            let reason = format!("delivered {} times without completing", delivery.deliveries);
            log_failure(self.queue.bury(&delivery, Some(&job), &reason).await);
            self.forget(&job.id).await;
            return;
        }
        match self.queue.was_completed(&job.id).await {
            Ok(true) => {
                tracing::info!(job = %job.id, "job already done; dropping the repeat");
                log_failure(self.queue.discard(&delivery).await);
                self.forget(&job.id).await;
                return;
            }
            Ok(false) => {}
            Err(error) => {
                // Leave it pending: it comes back after the visibility timeout.
                tracing::warn!(error = %error, "cannot check the job; leaving it for later");
                return;
            }
        }
        match self.perform(&job).await {
            Ok(()) => {
                tracing::info!(job = %job.id, kind = job.kind(), "job done");
                log_failure(self.queue.complete(&delivery, &job.id).await);
                self.forget(&job.id).await;
            }
            Err(error) => {
                let failed = Job {
                    attempt: job.attempt + 1,
                    ..job
                };
                if failed.attempt >= self.settings.max_attempts {
                    tracing::error!(job = %failed.id, error = format!("{error:#}"), "job failed for good");
                    log_failure(
                        self.queue
                            .bury(&delivery, Some(&failed), &format!("{error:#}"))
                            .await,
                    );
                    self.forget(&failed.id).await;
                } else {
                    let delay = self.backoff(failed.attempt);
                    tracing::warn!(job = %failed.id, attempt = failed.attempt, ?delay, error = format!("{error:#}"), "job failed; will retry");
                    log_failure(self.queue.retry_later(&delivery, &failed, delay).await);
                }
            }
        }
    }

    /// Takes a finished (or abandoned) job out of the outbox, so it is not
    /// relayed again. If this fails, a later relay repeats the job and the
    /// worker recognises it as done.
    async fn forget(&self, job_id: &str) {
        if let Err(error) = self.outbox.remove(job_id).await {
            tracing::warn!(error = %error, job = job_id, "removing a done job from the outbox failed");
        }
    }

    async fn perform(&self, job: &Job) -> anyhow::Result<()> {
        // Every task so far is a mail.
        self.mail.perform(&job.task).await
    }

    /// Exponential, capped, with up to 50% random jitter so that jobs that
    /// failed together do not retry together.
    fn backoff(&self, attempt: u32) -> Duration {
        let base = self
            .settings
            .retry_base_ms
            .saturating_mul(1 << attempt.saturating_sub(1).min(20));
        let capped = base.min(self.settings.retry_max_ms);
        Duration::from_millis(capped + fastrand::u64(0..=capped / 2))
    }
}

fn log_failure(result: Result<(), crate::repositories::redis::RedisError>) {
    if let Err(error) = result {
        tracing::warn!(error = %error, "updating the job queue failed; the job will be redelivered");
    }
}

/// The relay and workers of one process, and the switch that stops them.
pub struct JobTasks {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl JobTasks {
    pub fn start(relay: OutboxRelay, workers: Vec<Worker>) -> Self {
        let (stop, stopped) = watch::channel(false);
        let mut tasks = vec![tokio::spawn(relay.run(stopped.clone()))];
        tasks.extend(
            workers
                .into_iter()
                .map(|worker| tokio::spawn(worker.run(stopped.clone()))),
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

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"pending": 0, "in_flight": 1, "delayed": 0, "dead": 0, "retried": 2,
    "delivered": 57, "outbox": 1}))]
pub struct JobStats {
    #[serde(flatten)]
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

    pub async fn stats(&self, actor: &Principal) -> Result<JobStats, AppError> {
        actor.require_admin()?;
        self.counts().await
    }

    pub async fn counts(&self) -> Result<JobStats, AppError> {
        let counts = self.queue.counts().await?;
        Ok(JobStats {
            queue: counts,
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
    pub async fn replay_all_dead_as(&self, actor: &Principal) -> Result<u64, AppError> {
        actor.require_admin()?;
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
