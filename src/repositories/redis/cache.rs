use std::time::Duration;

use redis::Script;

use super::{RedisClient, RedisError};

/// A cache entry as stored: the version it was written at and the value's
/// bytes, or no bytes for a tombstone left by an invalidation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedEntry {
    pub version: i64,
    pub body: Option<Vec<u8>>,
}

impl CachedEntry {
    fn encode(version: i64, body: Option<&[u8]>) -> Vec<u8> {
        let body = body.unwrap_or_default();
        let mut entry = Vec::with_capacity(20 + body.len());
        entry.extend_from_slice(version.to_string().as_bytes());
        entry.push(b':');
        entry.extend_from_slice(body);
        entry
    }

    /// Parses a stored entry; `None` for anything not in the format.
    pub fn decode(entry: &[u8]) -> Option<Self> {
        let separator = entry.iter().position(|&byte| byte == b':')?;
        let version = std::str::from_utf8(&entry[..separator])
            .ok()?
            .parse()
            .ok()?;
        let body = &entry[separator + 1..];
        Some(Self {
            version,
            body: (!body.is_empty()).then(|| body.to_vec()),
        })
    }
}

#[derive(Clone)]
pub struct CacheStore {
    client: RedisClient,
    put_script: Script,
}

impl CacheStore {
    pub fn new(client: RedisClient) -> Self {
        Self {
            client,
            put_script: Script::new(include_str!("scripts/cache_put.lua")),
        }
    }

    /// The entry under `key`; an entry in an unknown format counts as absent.
    pub async fn get(&self, key: &str) -> Result<Option<CachedEntry>, RedisError> {
        let entry: Option<Vec<u8>> = self.client.query(redis::cmd("GET").arg(key)).await?;
        Ok(entry.as_deref().and_then(CachedEntry::decode))
    }

    /// Stores `body` (or a tombstone) at `version` unless a newer version is
    /// already there. Returns whether it was written.
    pub async fn put_unless_newer(
        &self,
        key: &str,
        version: i64,
        body: Option<&[u8]>,
        ttl: Duration,
    ) -> Result<bool, RedisError> {
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut invocation = self.put_script.key(key);
        invocation
            .arg(version)
            .arg(CachedEntry::encode(version, body))
            .arg(ttl_ms);
        self.client.invoke(&invocation).await
    }
}

#[cfg(test)]
mod tests {
    use super::CachedEntry;

    #[test]
    fn entries_round_trip_through_their_encoding() {
        let entry = CachedEntry::encode(7, Some(br#"{"id":1}"#));
        assert_eq!(entry, br#"7:{"id":1}"#);
        assert_eq!(
            CachedEntry::decode(&entry),
            Some(CachedEntry {
                version: 7,
                body: Some(br#"{"id":1}"#.to_vec())
            })
        );
        assert_eq!(
            CachedEntry::decode(&CachedEntry::encode(9, None)),
            Some(CachedEntry {
                version: 9,
                body: None
            })
        );
        assert_eq!(CachedEntry::decode(b"not an entry"), None);
    }
}
