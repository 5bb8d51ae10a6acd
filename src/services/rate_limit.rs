//! Rate limits per client, in two tiers: an in-process GCRA (actix-governor's
//! limiter, one per process, shared by every worker) that answers floods
//! without touching Redis and stands in when Redis fails, and a GCRA in Redis
//! that every instance shares, so N instances still allow only the limit.

use std::sync::Arc;
use std::time::Duration;

use actix_governor::governor::RateLimiter;
use actix_governor::governor::clock::{Clock, DefaultClock};
use actix_governor::governor::middleware::StateInformationMiddleware;
use actix_governor::governor::state::keyed::DefaultKeyedStateStore;

use crate::config::RateLimitSettings;
use crate::error::AppError;
use crate::metrics::Metrics;
use crate::repositories::redis::{Keys, RateDecision, RateLimitStore};

/// Whom a limit counts: a client address (IPv6 grouped by /64).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientKey(pub String);

/// The in-process tier: actix-governor's keyed GCRA limiter.
pub type LocalLimiter = RateLimiter<
    ClientKey,
    DefaultKeyedStateStore<ClientKey>,
    DefaultClock,
    StateInformationMiddleware,
>;

fn check_locally(limiter: &LocalLimiter, client: &ClientKey, limit: u32) -> RateDecision {
    match limiter.check_key(client) {
        Ok(snapshot) => RateDecision {
            allowed: true,
            limit,
            remaining: snapshot.remaining_burst_capacity(),
            retry_after: Duration::ZERO,
            reset: Duration::ZERO,
        },
        Err(not_until) => {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            RateDecision {
                allowed: false,
                limit,
                remaining: 0,
                retry_after: wait,
                reset: wait,
            }
        }
    }
}

pub struct RateLimitService {
    enabled: bool,
    store: RateLimitStore,
    keys: Keys,
    settings: RateLimitSettings,
    shield: Arc<LocalLimiter>,
    metrics: Arc<Metrics>,
}

impl RateLimitService {
    /// `shield` is the in-process tier of the general limit, built once
    /// for the whole process.
    pub fn new(
        store: RateLimitStore,
        keys: Keys,
        settings: &RateLimitSettings,
        shield: Arc<LocalLimiter>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            enabled: settings.enabled,
            store,
            keys,
            settings: settings.clone(),
            shield,
            metrics,
        }
    }

    fn count(&self, limit: &str, decision: &RateDecision) {
        let outcome = if decision.allowed {
            "allowed"
        } else {
            "denied"
        };
        self.metrics
            .rate_limit
            .with_label_values(&[limit, outcome])
            .inc();
    }

    /// Forgets in-process counters of clients that have been quiet long
    /// enough to be back at their full limit (they would otherwise pile up).
    pub fn forget_idle_clients(&self) {
        self.shield.retain_recent();
        self.shield.shrink_to_fit();
    }

    /// The general limit for one API request. When Redis fails, the
    /// in-process tier's answer stands: per instance, but still a limit.
    pub async fn check_request(&self, client: &ClientKey) -> Option<RateDecision> {
        if !self.enabled {
            return None;
        }
        let local = check_locally(&self.shield, client, self.settings.requests);
        let decision = if local.allowed {
            let window = Duration::from_secs(self.settings.window_seconds);
            let key = self.keys.rate_limit("api", &client.0);
            match self
                .store
                .check(&[key], self.settings.requests, window)
                .await
            {
                Ok(decision) => decision,
                Err(error) => {
                    tracing::warn!(error = %error, "shared rate limit unavailable; using this instance's");
                    local
                }
            }
        } else {
            local
        };
        self.count("api", &decision);
        Some(decision)
    }

    /// The login limit, per client and per account tried. Without Redis
    /// login cannot store a session anyway, so this fails closed.
    pub async fn check_login(
        &self,
        client: &ClientKey,
        account: &str,
    ) -> Result<Option<RateDecision>, AppError> {
        if !self.enabled {
            return Ok(None);
        }
        let keys = [
            self.keys.rate_limit("login-ip", &client.0),
            self.keys
                .rate_limit("login-account", &account.to_lowercase()),
        ];
        let window = Duration::from_secs(self.settings.login_window_seconds);
        let decision = self
            .store
            .check(&keys, self.settings.login_requests, window)
            .await?;
        self.count("login", &decision);
        if decision.allowed {
            Ok(Some(decision))
        } else {
            Err(AppError::RateLimited(decision))
        }
    }
}
