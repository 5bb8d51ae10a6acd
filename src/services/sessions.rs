//! Sessions as the services see them: Redis holds the truth; the near
//! cache, when on, holds a copy that is read first. Every change made here
//! drops this process's copy at once; other processes hear of it from Redis.

use std::sync::Arc;
use std::time::Duration;

use crate::domain::UserId;
use crate::repositories::redis::{Keys, NearCache, RedisError, SessionStore};

#[derive(Clone)]
pub struct SessionService {
    store: SessionStore,
    near: Arc<NearCache>,
    keys: Keys,
}

impl SessionService {
    pub fn new(store: SessionStore, near: Arc<NearCache>, keys: Keys) -> Self {
        Self { store, near, keys }
    }

    /// The `jti` of the user's current session.
    pub async fn current(&self, user: UserId) -> Result<Option<String>, RedisError> {
        if !self.near.is_serving() {
            return self.store.current(user).await;
        }
        let key = self.keys.session(user);
        if let Some(jti) = self.near.get(&key) {
            return Ok(Some(String::from_utf8_lossy(&jti).into_owned()));
        }
        let ticket = self.near.ticket(&key);
        let jti = self.store.current(user).await?;
        if let (Some(ticket), Some(jti)) = (ticket, &jti) {
            self.near.fill(ticket, &key, jti.as_bytes());
        }
        Ok(jti)
    }

    /// The user's current session and the value under `other`, both from
    /// the near cache when it has them, else in one Redis round trip. The
    /// value is kept near only if `keep` says so.
    pub async fn current_with(
        &self,
        user: UserId,
        other: &str,
        keep: impl Fn(&[u8]) -> bool,
    ) -> Result<(Option<String>, Option<Vec<u8>>), RedisError> {
        if !self.near.is_serving() {
            return self.store.current_with(user, other).await;
        }
        let key = self.keys.session(user);
        if let Some(jti) = self.near.get(&key)
            && let Some(value) = self.near.get(other)
        {
            let jti = String::from_utf8_lossy(&jti).into_owned();
            return Ok((Some(jti), Some(value.to_vec())));
        }
        let tickets = (self.near.ticket(&key), self.near.ticket(other));
        let (jti, value) = self.store.current_with(user, other).await?;
        if let (Some(ticket), Some(jti)) = (tickets.0, &jti) {
            self.near.fill(ticket, &key, jti.as_bytes());
        }
        if let (Some(ticket), Some(value)) = (tickets.1, &value)
            && keep(value)
        {
            self.near.fill(ticket, other, value);
        }
        Ok((jti, value))
    }

    /// Makes `jti` the user's only session, replacing any earlier one.
    pub async fn start(&self, user: UserId, jti: &str, ttl: Duration) -> Result<(), RedisError> {
        let result = self.store.start(user, jti, ttl).await;
        self.forget(user);
        result
    }

    /// Ends the session if `jti` is still the current one.
    pub async fn end_if_current(&self, user: UserId, jti: &str) -> Result<bool, RedisError> {
        let result = self.store.end_if_current(user, jti).await;
        self.forget(user);
        result
    }

    /// Ends whatever session the user has.
    pub async fn end(&self, user: UserId) -> Result<(), RedisError> {
        let result = self.store.end(user).await;
        self.forget(user);
        result
    }

    /// Drops the near copy, after the change reached Redis (or may have):
    /// dropped before, a read racing the change could bring the old value back.
    fn forget(&self, user: UserId) {
        self.near.invalidate(&self.keys.session(user));
    }
}
