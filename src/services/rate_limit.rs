//! Rate limits per client, in two tiers: an in-process GCRA (actix-governor's
//! limiter, one per process, shared by every worker) that answers floods
//! without touching Redis and stands in when Redis fails, and a GCRA in Redis
//! that every instance shares, so N instances still allow only the limit.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use prometheus::IntCounter;

use actix_governor::governor::RateLimiter;
use actix_governor::governor::clock::{Clock, DefaultClock};
use actix_governor::governor::middleware::StateInformationMiddleware;
use actix_governor::governor::state::keyed::DefaultKeyedStateStore;

use crate::config::RateLimitSettings;
use crate::error::AppError;
use crate::metrics::Metrics;
use crate::repositories::redis::{Keys, RateDecision, RateLimitStore, RedisError};

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
    reservations: Mutex<HashMap<ClientKey, Reservation>>,
}

/// Requests already counted in Redis for a client, not yet made.
struct Reservation {
    left: u32,
    /// Redis's answer when they were reserved.
    decision: RateDecision,
    made: Instant,
}

/// Reserve ahead only while at least this many requests remain...
const RESERVE_ABOVE: u32 = 64;
/// ...and at most this many at once...
const MAX_RESERVED: u32 = 16;
/// ...to be used within this long.
const RESERVATION_LIFETIME: Duration = Duration::from_secs(1);

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
            api_decisions: ["allowed", "denied"]
                .map(|outcome| metrics.rate_limit.with_label_values(&["api", outcome])),
            login_decisions: ["allowed", "denied"]
                .map(|outcome| metrics.rate_limit.with_label_values(&["login", outcome])),
            reservations: Mutex::default(),
        }
    }

    fn count(&self, limit: &str, decision: &RateDecision) {
        let counters = if limit == "api" {
            &self.api_decisions
        } else {
            &self.login_decisions
        };
        counters[usize::from(!decision.allowed)].inc();
    }

    /// Forgets in-process counters of clients that have been quiet long
    /// enough to be back at their full limit (they would otherwise pile up).
    pub fn forget_idle_clients(&self) {
        self.shield.retain_recent();
        self.shield.shrink_to_fit();
        self.reservations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|_, reservation| reservation.made.elapsed() <= RESERVATION_LIFETIME);
    }

    /// The general limit for one API request. When Redis fails, the
    /// in-process tier's answer stands: per instance, but still a limit.
    pub async fn check_request(&self, client: &ClientKey) -> Option<RateDecision> {
        if !self.enabled {
            return None;
        }
        let local = check_locally(&self.shield, client, self.settings.requests);
        let decision = if !local.allowed {
            local
        } else if let Some(reserved) = self.take_reserved(client) {
            reserved
        } else {
            self.reserve(client).await.unwrap_or_else(|error| {
                tracing::warn!(error = %error, "shared rate limit unavailable; using this instance's");
                local
            })
        };
        self.count("api", &decision);
        Some(decision)
    }

    /// A request paid for by an earlier reservation, if one is left.
    fn take_reserved(&self, client: &ClientKey) -> Option<RateDecision> {
        let mut reservations = self
            .reservations
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let reservation = reservations.get_mut(client)?;
        if reservation.left == 0 || reservation.made.elapsed() > RESERVATION_LIFETIME {
            return None;
        }
        reservation.left -= 1;
        Some(RateDecision {
            remaining: reservation.decision.remaining + reservation.left,
            ..reservation.decision
        })
    }

    /// Asks Redis for this request and, when the client is far from its
    /// limit, a few more: they are served from here without another round
    /// trip. Near the limit it asks for exactly one, so the limit stays
    /// exact where it matters; reserved requests a client never makes are
    /// simply counted as made.
    async fn reserve(&self, client: &ClientKey) -> Result<RateDecision, RedisError> {
        let known_remaining = self
            .reservations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(client)
            .map_or(0, |reservation| reservation.decision.remaining);
        let batch = if known_remaining >= RESERVE_ABOVE {
            (known_remaining / RESERVE_ABOVE).clamp(1, MAX_RESERVED)
        } else {
            1
        };
        let window = Duration::from_secs(self.settings.window_seconds);
        let key = self.keys.rate_limit("api", &client.to_string());
        let limit = self.settings.requests;
        let mut decision = self
            .store
            .check(std::slice::from_ref(&key), limit, window, batch)
            .await?;
        let mut granted = batch;
        if !decision.allowed && batch > 1 {
            // Others took the room meanwhile: ask for just this request.
            decision = self.store.check(&[key], limit, window, 1).await?;
            granted = 1;
        }
        if !decision.allowed {
            return Ok(decision);
        }
        // Concurrent requests that found no reservation left each reserved
        // a batch: add them up, or all but the last would go unused.
        let mut reservations = self
            .reservations
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let unused = reservations
            .get(client)
            .filter(|earlier| earlier.made.elapsed() <= RESERVATION_LIFETIME)
            .map_or(0, |earlier| earlier.left);
        reservations.insert(
            *client,
            Reservation {
                left: unused + granted - 1,
                decision,
                made: Instant::now(),
            },
        );
        drop(reservations);
        Ok(RateDecision {
            remaining: decision.remaining + granted - 1,
            ..decision
        })
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
            self.keys.rate_limit("login-ip", &client.to_string()),
            self.keys
                .rate_limit("login-account", &account.to_lowercase()),
        ];
        let window = Duration::from_secs(self.settings.login_window_seconds);
        let decision = self
            .store
            .check(&keys, self.settings.login_requests, window, 1)
            .await?;
        self.count("login", &decision);
        if decision.allowed {
            Ok(Some(decision))
        } else {
            Err(AppError::RateLimited(decision))
        }
    }
}
