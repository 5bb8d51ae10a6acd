//! The workers: each takes jobs from the stream and does them, one at a
//! time.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::config::{JobSettings, RedisSettings};
use crate::domain::Job;
use crate::repositories::redis::{BlockingConnection, Delivery, JobQueue};
use crate::repositories::sql::OutboxRepository;
use crate::services::account_mail::AccountMailer;

/// What became of one delivered job, and so what the queue is told.
#[derive(Debug)]
enum Outcome {
    /// Done now: acknowledged, and remembered as done.
    Done { job_id: String },
    /// Done before (a redelivery): acknowledged without doing it again.
    AlreadyDone { job_id: String },
    /// Failed: tried again after `delay`.
    RetryLater { job: Job, delay: Duration },
    /// Given up on (unreadable, failed for good, or delivered too often):
    /// moved to the dead-letter list with the reason.
    Dead { job: Option<Job>, reason: String },
    /// Could not be checked: left pending on this worker, which reads it
    /// back once Redis answers (or another claims it after the visibility
    /// timeout).
    LeftPending,
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
        // Whether a job handed to this worker may be left unsettled.
        let mut reread_own = false;
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
                            // Failing again, it waits for the next claim.
                            self.process(delivery).await;
                        }
                    }
                    Err(error) => tracing::warn!(error = %error, "claiming abandoned jobs failed"),
                }
            }
            if reread_own {
                match self.queue.own_pending(&self.consumer).await {
                    Ok(Some(delivery)) => {
                        tracing::info!(entry = %delivery.entry_id, "taking up again a job this worker did not settle");
                        if !self.process(delivery).await {
                            // Failing again: left to the visibility
                            // timeout, so it is not redone every second.
                            reread_own = false;
                            tokio::time::sleep(BLOCK).await;
                        }
                        continue;
                    }
                    Ok(None) => reread_own = false,
                    Err(error) => {
                        tracing::warn!(error = %error, "reading this worker's unsettled jobs failed; trying again")
                    }
                }
            }
            match self.queue.next(blocking, &self.consumer, BLOCK).await {
                Ok(Some(delivery)) => {
                    if !self.process(delivery).await {
                        reread_own = true;
                        tokio::time::sleep(BLOCK).await;
                    }
                }
                Ok(None) => {}
                Err(error) => {
                    // The read may have handed out a job whose reply was
                    // lost: it is pending on this worker.
                    tracing::warn!(error = %error, "reading the job stream failed; reconnecting");
                    connection = None;
                    reread_own = true;
                    tokio::time::sleep(BLOCK).await;
                }
            }
        }
        tracing::info!(consumer = %self.consumer, "worker stopped");
    }

    /// Does one delivered job and settles it with the queue; false if it
    /// is left pending on this worker.
    async fn process(&self, delivery: Delivery) -> bool {
        let outcome = self.handle(&delivery).await;
        self.settle(&delivery, outcome).await
    }

    /// Does one delivered job, unless it is unreadable, delivered too often
    /// or done before, and says what became of it. Touches no queue state.
    async fn handle(&self, delivery: &Delivery) -> Outcome {
        let job = match &delivery.job {
            Ok(job) => job.clone(),
            Err(reason) => {
                tracing::error!(entry = %delivery.entry_id, reason, "unreadable job; dead-lettered");
                return Outcome::Dead {
                    job: None,
                    reason: reason.clone(),
                };
            }
        };
        // Handed out again and again without an answer: it kills workers.
        if delivery.deliveries > u64::from(self.settings.max_attempts) {
            let reason = format!("delivered {} times without completing", delivery.deliveries);
            return Outcome::Dead {
                job: Some(job),
                reason,
            };
        }
        match self.queue.was_completed(&job.id).await {
            Ok(true) => {
                tracing::info!(job = %job.id, "job already done; dropping the repeat");
                return Outcome::AlreadyDone { job_id: job.id };
            }
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(error = %error, "cannot check the job; leaving it for later");
                return Outcome::LeftPending;
            }
        }
        match self.perform(&job).await {
            Ok(()) => {
                tracing::info!(job = %job.id, kind = job.kind(), "job done");
                Outcome::Done { job_id: job.id }
            }
            Err(error) => {
                let failed = Job {
                    attempt: job.attempt + 1,
                    ..job
                };
                if failed.attempt >= self.settings.max_attempts {
                    tracing::error!(job = %failed.id, error = format!("{error:#}"), "job failed for good");
                    Outcome::Dead {
                        job: Some(failed),
                        reason: format!("{error:#}"),
                    }
                } else {
                    let delay = self.backoff(failed.attempt);
                    tracing::warn!(job = %failed.id, attempt = failed.attempt, ?delay, error = format!("{error:#}"), "job failed; will retry");
                    Outcome::RetryLater { job: failed, delay }
                }
            }
        }
    }

    /// Tells the queue (and the outbox) what became of the job; false if
    /// the job stays pending (a failure here is logged: the job is then
    /// delivered again).
    async fn settle(&self, delivery: &Delivery, outcome: Outcome) -> bool {
        let (told, done_with) = match outcome {
            Outcome::Done { job_id } => {
                (self.queue.complete(delivery, &job_id).await, Some(job_id))
            }
            Outcome::AlreadyDone { job_id } => (self.queue.discard(delivery).await, Some(job_id)),
            Outcome::RetryLater { job, delay } => {
                (self.queue.retry_later(delivery, &job, delay).await, None)
            }
            Outcome::Dead { job, reason } => (
                self.queue.bury(delivery, job.as_ref(), &reason).await,
                job.map(|job| job.id),
            ),
            Outcome::LeftPending => return false,
        };
        if let Some(job_id) = done_with {
            self.forget(&job_id).await;
        }
        match told {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!(error = %error, "updating the job queue failed; the job will be redelivered");
                false
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
