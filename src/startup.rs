//! Builds everything once, at start-up: pools, services, the HTTP server.

use std::net::{TcpListener, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::{Condition, from_fn};
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use secrecy::ExposeSecret;
use socket2::{Domain, Protocol, Socket, Type};

use crate::config::{ServerSettings, Settings, redact_url};
use crate::controllers::client_guard::{self, BodyDeadline, ConnectionLimits};
use crate::controllers::client_ip::{ClientKeyExtractor, TrustedProxies, local_shield};
use crate::controllers::cors::{self, CorsPolicy};
use crate::controllers::security_headers;
use crate::controllers::{self, RefreshCookie};
use crate::metrics::Metrics;
use crate::repositories::redis::{
    CacheStore, JobQueue, KeyReader, KeyScanner, Keys, LockStore, NearCache, RateLimitStore,
    RedisClient, SessionStore, TrackingLink,
};
use crate::repositories::sql::Database;
use crate::services::account_mail::{AccountMailer, prune_tokens_periodically};
use crate::services::accounts::AccountService;
use crate::services::audit::{self, AuditService};
use crate::services::auth::AuthService;
use crate::services::cache::{CacheAside, CacheCounters};
use crate::services::cache_admin::CacheAdminService;
use crate::services::health::HealthService;
use crate::services::jobs::{JobService, JobTasks, OutboxRelay, Worker};
use crate::services::locks::LockService;
use crate::services::mail::Mailer;
use crate::services::metrics::MetricsService;
use crate::services::outbox::OutboxSignal;
use crate::services::passwords::PasswordHasher;
use crate::services::rate_limit::RateLimitService;
use crate::services::reads::NearReads;
use crate::services::refresh_tokens::RefreshSecrets;
use crate::services::sessions::{SessionService, SessionSettings, prune_periodically};
use crate::services::tokens::TokenIssuer;
use crate::services::users::UserService;
use crate::telemetry;

/// The services handlers reach through `web::Data`, built once and shared by
/// every worker.
#[derive(Clone)]
pub struct AppState {
    pub auth: web::Data<AuthService>,
    pub accounts: web::Data<AccountService>,
    pub audit: web::Data<AuditService>,
    pub refresh_cookie: web::Data<RefreshCookie>,
    pub users: web::Data<UserService>,
    pub health: web::Data<HealthService>,
    pub cache_admin: web::Data<CacheAdminService>,
    pub rate_limits: web::Data<RateLimitService>,
    pub clients: web::Data<ClientKeyExtractor>,
    pub jobs: web::Data<JobService>,
    pub cors: web::Data<CorsPolicy>,
    pub metrics: web::Data<Metrics>,
    pub metrics_service: web::Data<MetricsService>,
    /// Wakes this process's outbox relay after a registration.
    pub outbox_signal: OutboxSignal,
    /// Serves nothing until a tracking link keeps it coherent.
    pub near_cache: Arc<NearCache>,
}

impl AppState {
    pub fn build(
        settings: &Settings,
        database: &Database,
        redis: &RedisClient,
    ) -> anyhow::Result<Self> {
        let keys = Keys::new(&settings.redis.key_prefix);
        let metrics = Arc::new(Metrics::new()?);
        let users_repository = database.users();
        let near_cache = NearCache::new(
            settings.cache.near_capacity,
            Duration::from_secs(settings.cache.near_ttl_seconds),
        );
        let cache_counters = CacheCounters::new(&metrics);
        let cache = CacheAside::new(
            CacheStore::new(redis.clone()),
            Duration::from_secs(settings.cache.ttl_seconds),
            cache_counters.clone(),
            near_cache.clone(),
        );
        let audit = AuditService::new(database.audit());
        let cache_admin = CacheAdminService::new(
            KeyScanner::new(redis.clone()),
            keys.clone(),
            cache_counters,
            settings.cache.ttl_seconds,
            near_cache.clone(),
        )
        .with_audit(audit.clone());
        let locks = LockService::new(
            LockStore::new(redis.clone()),
            Duration::from_millis(settings.locks.lease_ms),
            Duration::from_millis(settings.locks.max_hold_ms),
            metrics.lock_contention.clone(),
        );
        let reads = NearReads::new(KeyReader::new(redis.clone()), near_cache.clone());
        let tokens = TokenIssuer::new(
            &settings.auth.jwt_secret,
            Duration::from_secs(settings.auth.token_ttl_seconds),
        );
        let sessions = SessionService::new(
            database.sessions(),
            SessionStore::new(redis.clone(), keys.clone()),
            reads.clone(),
            Arc::new(tokens),
            Arc::new(RefreshSecrets::new(&settings.auth.jwt_secret)),
            SessionSettings {
                refresh_ttl: Duration::from_secs(settings.auth.refresh_ttl_seconds),
                reuse_grace: Duration::from_secs(settings.auth.refresh_reuse_grace_seconds),
                single_session: settings.auth.single_session,
                max_sessions: settings.auth.max_sessions,
            },
        );
        let users = UserService::new(
            users_repository.clone(),
            cache,
            keys.clone(),
            sessions.clone(),
            reads,
            locks,
        );
        let hasher = PasswordHasher::new(
            settings.auth.hash_concurrency,
            settings.auth.hash_queue_capacity,
        )?;
        let outbox_signal = OutboxSignal::default();
        let jobs = JobService::new(
            JobQueue::new(redis.clone(), keys.clone()),
            database.outbox(),
        );
        let clients =
            ClientKeyExtractor::new(TrustedProxies::parse(&settings.rate_limit.trusted_proxies)?);
        let rate_limits = Arc::new(RateLimitService::new(
            RateLimitStore::new(redis.clone()),
            keys.clone(),
            &settings.rate_limit,
            local_shield(&settings.rate_limit, clients.clone())?,
            metrics.clone(),
        ));
        let auth = AuthService::new(
            users_repository.clone(),
            users.clone(),
            sessions.clone(),
            hasher.clone(),
            rate_limits.clone(),
            outbox_signal.clone(),
            audit.clone(),
        )
        .requiring_verified_email(settings.auth.require_verified_email);
        let accounts = AccountService::new(
            users_repository,
            database.account_tokens(),
            database.outbox(),
            outbox_signal.clone(),
            users.clone(),
            sessions.clone(),
            hasher,
            rate_limits.clone(),
        );
        let metrics_service = MetricsService::new(
            metrics.clone(),
            database.clone(),
            redis.clone(),
            jobs.clone(),
            near_cache.clone(),
        );
        Ok(Self {
            auth: web::Data::new(auth),
            accounts: web::Data::new(accounts),
            audit: web::Data::new(audit),
            refresh_cookie: web::Data::new(RefreshCookie {
                enabled: settings.auth.refresh_cookie,
            }),
            users: web::Data::new(users),
            health: web::Data::new(HealthService::new(database.clone(), redis.clone())),
            cache_admin: web::Data::new(cache_admin),
            rate_limits: web::Data::from(rate_limits),
            clients: web::Data::new(clients),
            jobs: web::Data::new(jobs),
            cors: web::Data::new(CorsPolicy::new(&settings.cors)?),
            metrics: web::Data::from(metrics),
            metrics_service: web::Data::new(metrics_service),
            outbox_signal,
            near_cache,
        })
    }
}

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
    let mut workers = Vec::new();
    if with_workers {
        prune_periodically(database.sessions());
        prune_tokens_periodically(database.account_tokens());
        let mail = AccountMailer::new(
            database.account_tokens(),
            Mailer::new(&settings.mail)?,
            settings,
        )?;
        audit::prune_periodically(
            database.audit(),
            Duration::from_secs(settings.audit.retention_days * 86_400),
        );
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
    Ok(JobTasks::start(relay, workers))
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

/// The listening socket, with the configured backlog: `std`'s listener
/// always asks for 128, and a burst of new connections past the queue waits
/// a second for the client's SYN retransmit.
fn listen(server: &ServerSettings) -> anyhow::Result<TcpListener> {
    let (host, port) = (server.host.as_str(), server.port);
    let cannot = || format!("cannot listen on {host}:{port}");
    let address = (host, port)
        .to_socket_addrs()
        .with_context(cannot)?
        .next()
        .with_context(cannot)?;
    let socket = Socket::new(
        Domain::for_address(address),
        Type::STREAM,
        Some(Protocol::TCP),
    )
    .with_context(cannot)?;
    // As std does: a restarted server can bind while old connections linger.
    socket.set_reuse_address(true).with_context(cannot)?;
    socket.bind(&address.into()).with_context(cannot)?;
    let backlog = i32::try_from(server.backlog).unwrap_or(i32::MAX);
    socket.listen(backlog).with_context(cannot)?;
    Ok(socket.into())
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

/// Every minute, drops in-process rate-limit state of quiet clients.
fn forget_idle_clients(rate_limits: web::Data<RateLimitService>) {
    tokio::spawn(async move {
        let mut every_minute = tokio::time::interval(Duration::from_secs(60));
        loop {
            every_minute.tick().await;
            rate_limits.forget_idle_clients();
        }
    });
}

fn serve(listener: TcpListener, state: AppState, settings: &Settings) -> anyhow::Result<Server> {
    let cors_enabled = state.cors.allows_any();
    let connections = ConnectionLimits::new(
        settings.server.max_connections_per_client,
        TrustedProxies::parse(&settings.rate_limit.trusted_proxies)?,
    );
    let body_deadline = web::Data::new(BodyDeadline::new(&settings.server));
    let metrics_here = settings.server.metrics_port.is_none();
    let mut server = HttpServer::new(move || {
        App::new()
            .wrap(from_fn(client_guard::guard_requests))
            .wrap(from_fn(telemetry::trace_requests))
            .wrap(from_fn(security_headers::add_security_headers))
            // Outside the rest, so that every answer, the early 413
            // included, is readable by an allowed origin.
            .wrap(Condition::new(cors_enabled, state.cors.middleware()))
            .wrap(Condition::new(
                cors_enabled,
                from_fn(cors::explain_refusals),
            ))
            .app_data(body_deadline.clone())
            .app_data(state.auth.clone())
            .app_data(state.accounts.clone())
            .app_data(state.refresh_cookie.clone())
            .app_data(state.audit.clone())
            .app_data(state.users.clone())
            .app_data(state.health.clone())
            .app_data(state.cache_admin.clone())
            .app_data(state.rate_limits.clone())
            .app_data(state.clients.clone())
            .app_data(state.jobs.clone())
            .app_data(state.cors.clone())
            .app_data(state.metrics.clone())
            .app_data(state.metrics_service.clone())
            .configure(|config| {
                if metrics_here {
                    controllers::configure_metrics(config);
                }
            })
            .configure(controllers::configure)
    })
    .on_connect(move |connection, data| connections.on_connect(connection, data))
    .shutdown_timeout(settings.server.shutdown_timeout_seconds)
    // Our own handler: actix treats SIGINT as "stop now", we drain on both.
    .disable_signals()
    .listen(listener)?;
    if settings.server.workers > 0 {
        server = server.workers(settings.server.workers);
    }
    Ok(server.run())
}

/// `/metrics` alone, on the listener of `server.metrics_port`: one worker
/// is plenty for a scraper.
fn serve_metrics(
    listener: TcpListener,
    state: &AppState,
    settings: &Settings,
) -> anyhow::Result<Server> {
    let (metrics, metrics_service) = (state.metrics.clone(), state.metrics_service.clone());
    let server = HttpServer::new(move || {
        App::new()
            .wrap(from_fn(telemetry::trace_requests))
            .app_data(metrics.clone())
            .app_data(metrics_service.clone())
            .configure(controllers::configure_metrics_listener)
    })
    .workers(1)
    .shutdown_timeout(settings.server.shutdown_timeout_seconds)
    .disable_signals()
    .listen(listener)?;
    Ok(server.run())
}
