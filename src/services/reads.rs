//! Reads of sessions and cached entries: from the near cache when it is
//! serving and has them, else from Redis in one round trip. Writers drop
//! the near copy themselves after changing Redis (see `forget`).

use std::sync::Arc;

use crate::repositories::redis::{KeyReader, NearCache, RedisError};

#[derive(Clone)]
pub struct NearReads {
    reader: KeyReader,
    near: Arc<NearCache>,
}

impl NearReads {
    pub fn new(reader: KeyReader, near: Arc<NearCache>) -> Self {
        Self { reader, near }
    }

    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, RedisError> {
        if !self.near.is_serving() {
            return self.reader.get(key).await;
        }
        if let Some(value) = self.near.get(key) {
            return Ok(Some(value.to_vec()));
        }
        let ticket = self.near.ticket(key);
        let value = self.reader.get(key).await?;
        if let (Some(ticket), Some(value)) = (ticket, &value) {
            self.near.fill(ticket, key, value);
        }
        Ok(value)
    }

    /// Both values; the second is kept near only if `keep` says so.
    pub async fn get_pair(
        &self,
        first: &str,
        second: &str,
        keep: impl Fn(&[u8]) -> bool,
    ) -> Result<(Option<Vec<u8>>, Option<Vec<u8>>), RedisError> {
        if !self.near.is_serving() {
            return self.reader.get_pair(first, second).await;
        }
        if let Some(a) = self.near.get(first)
            && let Some(b) = self.near.get(second)
        {
            return Ok((Some(a.to_vec()), Some(b.to_vec())));
        }
        let tickets = (self.near.ticket(first), self.near.ticket(second));
        let (a, b) = self.reader.get_pair(first, second).await?;
        if let (Some(ticket), Some(a)) = (tickets.0, &a) {
            self.near.fill(ticket, first, a);
        }
        if let (Some(ticket), Some(b)) = (tickets.1, &b)
            && keep(b)
        {
            self.near.fill(ticket, second, b);
        }
        Ok((a, b))
    }

    /// Drops the near copy, after the change reached Redis (or may have):
    /// dropped before, a read racing the change could bring the old value back.
    pub fn forget(&self, key: &str) {
        self.near.invalidate(key);
    }
}
