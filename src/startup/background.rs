//! What runs beside the HTTP server: the outbox relay and job workers with
//! their hourly pruning (all stopped on shutdown), the idle-client sweep, and the shutdown signal.

use std::time::Duration;

use actix_web::web;
use anyhow::Context;

use crate::config::Settings;
use crate::repositories::redis::{JobQueue, Keys, RedisClient};
use crate::repositories::sql::Database;
use crate::services::account_mail::AccountMailer;
use crate::services::jobs::{JobTasks, OutboxRelay, Prune, Worker};
use crate::services::mail::Mailer;
use crate::services::outbox::OutboxSignal;
use crate::services::rate_limit::RateLimitService;

/// The outbox relay, and (if `with_workers`) the job workers, of this process.
pub async fn start_jobs(
    settings: &Settings,
    database: &Database,
    redis: &RedisClient,
    signal: OutboxSignal,
    with_workers: bool,
) -> anyhow::Result<JobTasks> {
    let queue = JobQueue::new(redis.clone(), Keys::new(&settings.redis.key_prefix));
    queue
        .ensure_group()
        .await
        .context("cannot create the job stream's consumer group")?;
    queue
        .migrate_untagged()
        .await
        .context("cannot move the job queue of the previous release to its new keys")?;
    let relay = OutboxRelay::new(
        database.outbox(),
        queue.clone(),
        signal,
        Duration::from_secs(settings.jobs.relay_again_after_seconds),
    );
    let (mut workers, mut prunes) = (Vec::new(), Vec::new());
    if with_workers {
        prunes = vec![
            Prune::sessions(database.sessions()),
            Prune::account_tokens(database.account_tokens()),
            Prune::audit(
                database.audit(),
                Duration::from_secs(settings.audit.retention_days * 86_400),
            ),
        ];
        let mail = AccountMailer::new(
            database.account_tokens(),
            Mailer::new(&settings.mail)?,
            settings,
        )?;
        let process = format!(
            "{}-{}",
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        for n in 0..settings.worker.concurrency {
            workers.push(Worker::new(
                queue.clone(),
                database.outbox(),
                mail.clone(),
                settings.jobs.clone(),
                settings.redis.clone(),
                format!("worker-{process}-{n}"),
            ));
        }
    }
    Ok(JobTasks::start(relay, workers, prunes))
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut terminate) => {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(error) => {
            tracing::warn!(error = %error, "cannot listen for SIGTERM; stop with Ctrl-C");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Every minute, drops in-process rate-limit state of quiet clients.
pub(super) fn forget_idle_clients(rate_limits: web::Data<RateLimitService>) {
    tokio::spawn(async move {
        let mut every_minute = tokio::time::interval(Duration::from_secs(60));
        loop {
            every_minute.tick().await;
            rate_limits.forget_idle_clients();
        }
    });
}
