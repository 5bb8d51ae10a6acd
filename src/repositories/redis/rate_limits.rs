use std::time::Duration;

use redis::Script;

use super::{RedisClient, RedisError};
use crate::domain::RateDecision;

/// GCRA counters shared by every instance (`scripts/rate_limit.lua`).
#[derive(Clone)]
pub struct RateLimitStore {
    client: RedisClient,
    script: Script,
}

impl RateLimitStore {
    pub fn new(client: RedisClient) -> Self {
        Self {
            client,
            script: Script::new(include_str!("scripts/rate_limit.lua")),
        }
    }

    /// Counts `cost` requests against every key, if all of them allow that
    /// many. One round trip: EVALSHA, with a reload only if Redis lost the
    /// script.
    ///
    /// On a cluster the keys (a client's and an account's) live in
    /// different slots, so each is checked by a script of its own, in
    /// order: the first that refuses decides, and the keys before it have
    /// counted the attempt (a refused login still cost its client one).
    pub async fn check(
        &self,
        keys: &[String],
        limit: u32,
        window: Duration,
        cost: u32,
    ) -> Result<RateDecision, RedisError> {
        if self.client.is_cluster() && keys.len() > 1 {
            let mut combined: Option<RateDecision> = None;
            for key in keys {
                let decision = self
                    .check_together(std::slice::from_ref(key), limit, window, cost)
                    .await?;
                if !decision.allowed {
                    return Ok(decision);
                }
                combined = Some(match combined {
                    None => decision,
                    Some(before) => RateDecision {
                        remaining: before.remaining.min(decision.remaining),
                        reset: before.reset.max(decision.reset),
                        ..before
                    },
                });
            }
            if let Some(decision) = combined {
                return Ok(decision);
            }
        }
        self.check_together(keys, limit, window, cost).await
    }

    async fn check_together(
        &self,
        keys: &[String],
        limit: u32,
        window: Duration,
        cost: u32,
    ) -> Result<RateDecision, RedisError> {
        let mut invocation = self.script.prepare_invoke();
        for key in keys {
            invocation.key(key);
        }
        invocation
            .arg(window.as_millis() as u64)
            .arg(limit)
            .arg(cost.max(1));
        let (allowed, remaining, retry_after, reset): (i64, i64, i64, i64) =
            self.client.invoke(&invocation).await?;
        let millis = |value: i64| Duration::from_millis(value.max(0) as u64);
        Ok(RateDecision {
            allowed: allowed == 1,
            limit,
            remaining: remaining.clamp(0, i64::from(limit)) as u32,
            retry_after: millis(retry_after),
            reset: millis(reset),
        })
    }
}
