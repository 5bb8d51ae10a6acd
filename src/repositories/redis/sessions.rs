use std::time::Duration;

use redis::Script;

use super::{Keys, RedisClient, RedisError};
use crate::domain::{SessionId, UserId};

/// What makes an access token valid: `{prefix}session:{sid}` holds the
/// session's user id while the session is live, or [`ENDED`] once it has
/// ended (a tombstone, so that a late refresh cannot revive it). Both live
/// as long as an access token of the session can, and are renewed by each
/// refresh; SQL keeps the session itself.
#[derive(Clone)]
pub struct SessionStore {
    client: RedisClient,
    keys: Keys,
    activate_script: Script,
}

/// The value of an ended session's key.
pub const ENDED: &str = "ended";

impl SessionStore {
    pub fn new(client: RedisClient, keys: Keys) -> Self {
        Self {
            client,
            keys,
            activate_script: Script::new(include_str!("scripts/session_activate.lua")),
        }
    }

    pub fn key(&self, id: &SessionId) -> String {
        self.keys.session(id)
    }

    /// Marks the session live for `ttl`, unless it has ended; false if it has.
    pub async fn activate(
        &self,
        id: &SessionId,
        user: UserId,
        ttl: Duration,
    ) -> Result<bool, RedisError> {
        let mut invocation = self.activate_script.key(self.keys.session(id));
        invocation.arg(user.0).arg(ttl.as_secs().max(1)).arg(ENDED);
        let set: i64 = self.client.invoke(&invocation).await?;
        Ok(set == 1)
    }

    /// Leaves a tombstone for each session, for `ttl`, in one round trip.
    pub async fn end(&self, ids: &[SessionId], ttl: Duration) -> Result<(), RedisError> {
        if ids.is_empty() {
            return Ok(());
        }
        if self.client.is_cluster() {
            // One slot per session: the SETs go out together, each to its master.
            let commands: Vec<redis::Cmd> = ids
                .iter()
                .map(|id| {
                    let mut set = redis::cmd("SET");
                    set.arg(self.keys.session(id))
                        .arg(ENDED)
                        .arg("EX")
                        .arg(ttl.as_secs().max(1));
                    set
                })
                .collect();
            futures_util::future::try_join_all(
                commands.iter().map(|set| self.client.query::<()>(set)),
            )
            .await?;
            return Ok(());
        }
        let mut pipeline = redis::pipe();
        for id in ids {
            pipeline
                .cmd("SET")
                .arg(self.keys.session(id))
                .arg(ENDED)
                .arg("EX")
                .arg(ttl.as_secs().max(1))
                .ignore();
        }
        self.client.query_pipeline::<()>(&pipeline).await
    }
}
