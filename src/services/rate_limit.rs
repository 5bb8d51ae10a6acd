//! Rate limits per client, in two tiers: an in-process GCRA (actix-governor's
//! limiter, one per process, shared by every worker) that answers floods
//! without touching Redis and stands in when Redis fails, and a GCRA in Redis
//! that every instance shares, so N instances still allow only the limit.

use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use prometheus::IntCounter;

use actix_governor::governor::RateLimiter;
use actix_governor::governor::clock::{Clock, DefaultClock};
use actix_governor::governor::middleware::StateInformationMiddleware;
use actix_governor::governor::state::keyed::DefaultKeyedStateStore;

use crate::config::RateLimitSettings;
use crate::domain::RateDecision;
use crate::domain::UserId;
use crate::error::AppError;
use crate::metrics::Metrics;
use crate::repositories::redis::{Keys, RateLimitStore};

/// Whom a limit counts: a client address, IPv4-mapped IPv6 as IPv4 and
/// other IPv6 by its /64 network (the address with its host part zeroed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey(IpAddr);

impl ClientKey {
    pub fn of(address: IpAddr) -> Self {
        match address {
            IpAddr::V4(_) => Self(address),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self(IpAddr::V4(v4)),
                None => {
                    let s = v6.segments();
                    Self(IpAddr::V6(Ipv6Addr::new(
                        s[0], s[1], s[2], s[3], 0, 0, 0, 0,
                    )))
                }
            },
        }
    }
}

/// As it appears in Redis keys: `192.0.2.8`, `2001:db8:1:2::/64`.
impl std::fmt::Display for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

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
    /// `rate_limit_decisions_total` of each limit: [allowed, denied],
    /// looked up once rather than by label on every request.
    api_decisions: [IntCounter; 2],
    login_decisions: [IntCounter; 2],
    register_decisions: [IntCounter; 2],
}

/// Whose login attempts a per-account limit counts: the account when the
/// name tried belongs to one (its username and its e-mail address are one
/// key), else the name as the lookup normalised it. Password checks of a
/// signed-in user (a password change) count against their account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountKey {
    Account(UserId),
    UnknownName(String),
}

impl AccountKey {
    fn subject(&self) -> String {
        match self {
            Self::Account(id) => format!("user:{id}"),
            Self::UnknownName(name) => format!("name:{name}"),
        }
    }
}

#[derive(Clone, Copy)]
enum Limit {
    Api,
    Login,
    Register,
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
        let decisions = |limit: &str| {
            ["allowed", "denied"]
                .map(|outcome| metrics.rate_limit.with_label_values(&[limit, outcome]))
        };
        Self {
            enabled: settings.enabled,
            store,
            keys,
            settings: settings.clone(),
            shield,
            api_decisions: decisions("api"),
            login_decisions: decisions("login"),
            register_decisions: decisions("register"),
        }
    }

    fn count(&self, limit: Limit, decision: &RateDecision) {
        let counters = match limit {
            Limit::Api => &self.api_decisions,
            Limit::Login => &self.login_decisions,
            Limit::Register => &self.register_decisions,
        };
        counters[usize::from(!decision.allowed)].inc();
    }

    /// Forgets in-process counters of clients that have been quiet long
    /// enough to be back at their full limit (they would otherwise pile up).
    pub fn forget_idle_clients(&self) {
        self.shield.retain_recent();
        self.shield.shrink_to_fit();
    }

    /// The general limit for one API request: one atomic check in Redis
    /// per request, so N concurrent requests let exactly min(N, limit)
    /// through, on one instance or many. (Reserving several requests per
    /// round trip saved Redis work far from the limit, but requests
    /// reserved on one instance and never made there were refused to
    /// others.) The in-process tier answers first, so a flood past the
    /// limit costs no Redis work; when Redis fails, its answer stands: per
    /// instance, but still a limit.
    pub async fn check_request(&self, client: &ClientKey) -> Option<RateDecision> {
        if !self.enabled {
            return None;
        }
        let local = check_locally(&self.shield, client, self.settings.requests);
        let decision = if local.allowed {
            let key = self.keys.rate_limit("api", &client.to_string());
            let window = Duration::from_secs(self.settings.window_seconds);
            self.store
                .check(&[key], self.settings.requests, window, 1)
                .await
                .unwrap_or_else(|error| {
                    tracing::warn!(error = %error, "shared rate limit unavailable; using this instance's");
                    local
                })
        } else {
            local
        };
        self.count(Limit::Api, &decision);
        Some(decision)
    }

    /// The login limit, per client and per account tried: every login, and
    /// every other check of a password or of an account's secret (a
    /// password change's current password; the reset and verification
    /// endpoints should call it too), counts once against both. Without
    /// Redis this fails closed: a login cannot store a session anyway.
    pub async fn check_login(
        &self,
        client: &ClientKey,
        account: &AccountKey,
    ) -> Result<Option<RateDecision>, AppError> {
        if !self.enabled {
            return Ok(None);
        }
        let keys = [
            self.keys.rate_limit("login-ip", &client.to_string()),
            self.keys.rate_limit("login-account", &account.subject()),
        ];
        let window = Duration::from_secs(self.settings.login_window_seconds);
        let limit = self.settings.login_requests;
        self.check_strict(Limit::Login, &keys, limit, window).await
    }

    /// The registration limit, per client: each registration costs a
    /// password hash. Fails closed like login.
    pub async fn check_register(
        &self,
        client: &ClientKey,
    ) -> Result<Option<RateDecision>, AppError> {
        if !self.enabled {
            return Ok(None);
        }
        let keys = [self.keys.rate_limit("register-ip", &client.to_string())];
        let window = Duration::from_secs(self.settings.register_window_seconds);
        let limit = self.settings.register_requests;
        self.check_strict(Limit::Register, &keys, limit, window)
            .await
    }

    async fn check_strict(
        &self,
        limit: Limit,
        keys: &[String],
        requests: u32,
        window: Duration,
    ) -> Result<Option<RateDecision>, AppError> {
        let decision = self.store.check(keys, requests, window, 1).await?;
        self.count(limit, &decision);
        if decision.allowed {
            Ok(Some(decision))
        } else {
            Err(AppError::RateLimited(decision))
        }
    }

    /// The login limit, per client only: for requests that name no account
    /// (a mailed token presented), which count against it all the same.
    pub async fn check_login_client(
        &self,
        client: &ClientKey,
    ) -> Result<Option<RateDecision>, AppError> {
        if !self.enabled {
            return Ok(None);
        }
        let keys = [self.keys.rate_limit("login-ip", &client.to_string())];
        let window = Duration::from_secs(self.settings.login_window_seconds);
        let limit = self.settings.login_requests;
        self.check_strict(Limit::Login, &keys, limit, window).await
    }
}
