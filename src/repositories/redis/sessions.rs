use std::time::Duration;

use redis::Script;

use super::{Keys, RedisClient, RedisError};
use crate::domain::UserId;

/// The current session of each user: `{prefix}session:user:{id}` holds the
/// `jti` of the one token that may be used.
#[derive(Clone)]
pub struct SessionStore {
    client: RedisClient,
    keys: Keys,
    end_if_current_script: Script,
}

impl SessionStore {
    pub fn new(client: RedisClient, keys: Keys) -> Self {
        Self {
            client,
            keys,
            end_if_current_script: Script::new(include_str!("scripts/delete_if_equals.lua")),
        }
    }

    /// Makes `jti` the user's only session, replacing any earlier one.
    pub async fn start(&self, user: UserId, jti: &str, ttl: Duration) -> Result<(), RedisError> {
        self.client
            .query(
                redis::cmd("SET")
                    .arg(self.keys.session(user))
                    .arg(jti)
                    .arg("EX")
                    .arg(ttl.as_secs().max(1)),
            )
            .await
    }

    pub async fn current(&self, user: UserId) -> Result<Option<String>, RedisError> {
        self.client
            .query(redis::cmd("GET").arg(self.keys.session(user)))
            .await
    }

    /// The user's current session and the raw value of `other`, in one
    /// round trip (MGET).
    pub async fn current_with(
        &self,
        user: UserId,
        other: &str,
    ) -> Result<(Option<String>, Option<Vec<u8>>), RedisError> {
        self.client
            .query(redis::cmd("MGET").arg(self.keys.session(user)).arg(other))
            .await
    }

    /// Ends the session if `jti` is still the current one.
    pub async fn end_if_current(&self, user: UserId, jti: &str) -> Result<bool, RedisError> {
        let mut invocation = self.end_if_current_script.key(self.keys.session(user));
        invocation.arg(jti);
        let deleted: i64 = self.client.invoke(&invocation).await?;
        Ok(deleted == 1)
    }

    /// Ends whatever session the user has.
    pub async fn end(&self, user: UserId) -> Result<(), RedisError> {
        let _: i64 = self
            .client
            .query(redis::cmd("DEL").arg(self.keys.session(user)))
            .await?;
        Ok(())
    }
}
