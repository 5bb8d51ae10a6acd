//! The services, built once from the settings and the pools, and shared by
//! every worker.

use std::sync::Arc;
use std::time::Duration;

use actix_web::web;

use crate::config::Settings;
use crate::controllers::RefreshCookie;
use crate::controllers::client_ip::{ClientKeyExtractor, TrustedProxies, local_shield};
use crate::controllers::cors::CorsPolicy;
use crate::metrics::Metrics;
use crate::repositories::redis::{
    CacheStore, JobQueue, KeyReader, KeyScanner, Keys, LockStore, NearCache, RateLimitStore,
    RedisClient, SessionStore,
};
use crate::repositories::sql::Database;
use crate::services::accounts::AccountService;
use crate::services::audit::AuditService;
use crate::services::auth::AuthService;
use crate::services::cache::{CacheAside, CacheCounters};
use crate::services::cache_admin::CacheAdminService;
use crate::services::health::HealthService;
use crate::services::jobs::JobService;
use crate::services::locks::LockService;
use crate::services::metrics::MetricsService;
use crate::services::outbox::OutboxSignal;
use crate::services::passwords::PasswordHasher;
use crate::services::rate_limit::RateLimitService;
use crate::services::reads::NearReads;
use crate::services::refresh_tokens::RefreshSecrets;
use crate::services::sessions::{SessionService, SessionSettings};
use crate::services::tokens::TokenIssuer;
use crate::services::users::UserService;

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
