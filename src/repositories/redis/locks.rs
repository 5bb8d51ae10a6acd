use std::time::Duration;

use redis::Script;

use super::{RedisClient, RedisError};

/// The two keys of one lock: the lock itself and its last fencing token.
#[derive(Debug, Clone)]
pub struct LockKeys {
    pub lock: String,
    pub fence: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquisition {
    /// Taken; writes under it carry this fencing token.
    Held { fence: i64 },
    /// Someone else holds it for about this long still.
    Busy { held_for: Duration },
}

/// How long a lock's last fencing token is kept after its last use. Only
/// tokens handed out in the same microsecond, or while Redis's clock stands
/// behind an earlier token, need it to keep growing; a day covers both, and
/// a deleted user's token goes with it.
const FENCE_TTL: Duration = Duration::from_secs(24 * 3600);

/// Leases in Redis: `SET NX PX` with a random owner, released and extended
/// only by that owner.
#[derive(Clone)]
pub struct LockStore {
    client: RedisClient,
    acquire_script: Script,
    extend_script: Script,
    release_script: Script,
}

impl LockStore {
    pub fn new(client: RedisClient) -> Self {
        Self {
            client,
            acquire_script: Script::new(include_str!("scripts/lock_acquire.lua")),
            extend_script: Script::new(include_str!("scripts/lock_extend.lua")),
            release_script: Script::new(include_str!("scripts/delete_if_equals.lua")),
        }
    }

    pub async fn acquire(
        &self,
        keys: &LockKeys,
        owner: &str,
        lease: Duration,
    ) -> Result<Acquisition, RedisError> {
        let mut invocation = self.acquire_script.key(&keys.lock);
        invocation
            .key(&keys.fence)
            .arg(owner)
            .arg(lease.as_millis() as u64)
            .arg(FENCE_TTL.as_millis() as u64);
        let answer: i64 = self.client.invoke(&invocation).await?;
        Ok(if answer > 0 {
            Acquisition::Held { fence: answer }
        } else {
            Acquisition::Busy {
                held_for: Duration::from_millis(answer.unsigned_abs()),
            }
        })
    }

    /// Whether the lease was extended (false: the lock is no longer ours).
    pub async fn extend(
        &self,
        keys: &LockKeys,
        owner: &str,
        lease: Duration,
    ) -> Result<bool, RedisError> {
        let mut invocation = self.extend_script.key(&keys.lock);
        invocation.arg(owner).arg(lease.as_millis() as u64);
        Ok(self.client.invoke::<i64>(&invocation).await? == 1)
    }

    /// Whether the lock was ours and is now free.
    pub async fn release(&self, keys: &LockKeys, owner: &str) -> Result<bool, RedisError> {
        let mut invocation = self.release_script.key(&keys.lock);
        invocation.arg(owner);
        Ok(self.client.invoke::<i64>(&invocation).await? == 1)
    }
}
