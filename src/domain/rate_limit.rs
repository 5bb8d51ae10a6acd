use std::time::Duration;

/// The outcome of one rate-limit check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    pub allowed: bool,
    pub limit: u32,
    /// Requests that could still be made right now.
    pub remaining: u32,
    /// When a denied request may be retried.
    pub retry_after: Duration,
    /// When the full limit is available again.
    pub reset: Duration,
}
