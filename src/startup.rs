//! Builds everything once, at start-up: pools, services, the HTTP server.

mod background;
mod server;
mod state;

use std::net::TcpListener;
use std::time::Duration;

use actix_web::dev::Server;
use anyhow::Context;
use secrecy::ExposeSecret;

use crate::config::{Settings, redact_url};
use crate::repositories::redis::{Keys, RedisClient, TrackingLink};
use crate::repositories::sql::Database;
use crate::services::jobs::JobTasks;

use background::forget_idle_clients;
pub use background::{shutdown_signal, start_jobs};
use server::{listen, serve, serve_metrics};
pub use state::AppState;

pub struct Application {
    port: u16,
    server: Server,
    /// The listener of `server.metrics_port`, when set.
    metrics: Option<(u16, Server)>,
    jobs: JobTasks,
    shutdown_timeout: Duration,
    database: Database,
    redis: RedisClient,
    tracking: Option<TrackingLink>,
}

impl Application {
    /// Connects, migrates, and binds the listener (port 0 picks a free one).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let database = Database::connect(&settings.database).await?;
        database.migrate().await?;
        let redis = RedisClient::connect(&settings.redis).await?;
        let state = AppState::build(&settings, &database, &redis)?;
        forget_idle_clients(state.rate_limits.clone());
        let near_enabled = settings.cache.near_enabled && !redis.is_cluster();
        if settings.cache.near_enabled && redis.is_cluster() {
            // CLIENT TRACKING BCAST is per node, and this client cannot keep a
            // tracking link on every master through failovers and reshards:
            // rather than risk a stale read, the near cache serves nothing.
            tracing::warn!(
                "near cache: off on Redis Cluster (tracking on every master cannot be \
                 guaranteed); every read goes to Redis"
            );
        }
        let tracking = near_enabled.then(|| {
            let keys = Keys::new(&settings.redis.key_prefix);
            TrackingLink::start(
                &settings.redis,
                vec![keys.cache_namespace(), keys.session_namespace()],
                state.near_cache.clone(),
                Duration::from_millis(settings.cache.near_heartbeat_ms),
            )
        });
        let jobs = start_jobs(
            &settings,
            &database,
            &redis,
            state.outbox_signal.clone(),
            settings.worker.enabled,
        )
        .await?;
        let listener = listen(&settings.server)?;
        let port = listener.local_addr()?.port();
        let metrics = match settings.server.metrics_port {
            Some(metrics_port) => {
                let address = (settings.server.metrics_host.as_str(), metrics_port);
                let listener = TcpListener::bind(address).with_context(|| {
                    format!("cannot listen for metrics on {}:{}", address.0, address.1)
                })?;
                let metrics_port = listener.local_addr()?.port();
                Some((metrics_port, serve_metrics(listener, &state, &settings)?))
            }
            None => None,
        };
        let server = serve(listener, state, &settings)?;
        log_start(&settings, port, metrics.as_ref().map(|(port, _)| *port));
        Ok(Self {
            port,
            server,
            metrics,
            jobs,
            shutdown_timeout: Duration::from_secs(settings.server.shutdown_timeout_seconds),
            database,
            redis,
            tracking,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of the metrics listener, when `server.metrics_port` is set.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(|(port, _)| *port)
    }

    /// Serves until SIGTERM or SIGINT, then shuts down gracefully.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `shutdown` completes; then stops accepting connections,
    /// lets in-flight requests finish (up to `server.shutdown_timeout_seconds`),
    /// stops the job workers, and closes the pools.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let handle = self.server.handle();
        let metrics_handle = self.metrics.as_ref().map(|(_, server)| server.handle());
        tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutting down: draining in-flight requests");
            if let Some(metrics) = metrics_handle {
                metrics.stop(true).await;
            }
            handle.stop(true).await;
        });
        if let Some((_, metrics)) = self.metrics {
            tokio::spawn(metrics);
        }
        self.server.await.context("HTTP server failed")?;
        tracing::info!("server stopped; stopping the job workers");
        self.jobs.stop(self.shutdown_timeout).await;
        if let Some(tracking) = &self.tracking {
            tracking.stop();
        }
        tracing::info!("closing pools");
        self.redis.close();
        self.database.close().await;
        Ok(())
    }
}

/// One line saying what this process serves and on what, for the person
/// who started it (credentials masked).
fn log_start(settings: &Settings, port: u16, metrics_port: Option<u16>) {
    let database_url = settings.database.url.expose_secret();
    let database = if database_url.starts_with("sqlite:") {
        "sqlite"
    } else {
        "postgres"
    };
    let metrics = match metrics_port {
        Some(metrics_port) => format!(
            "http://{}:{metrics_port}/metrics",
            settings.server.metrics_host
        ),
        None => "on the public port".to_string(),
    };
    tracing::info!(
        url = %format!("http://{}:{port}", settings.server.host),
        database = %database,
        database_url = %redact_url(database_url),
        redis = %settings.redis.shown(),
        metrics = %metrics,
        "serving"
    );
}
