use std::time::Duration;

use redis::Script;

use super::{RedisClient, RedisError};

/// A cache entry as stored: `<version>:<digest>:<body>`, the version of the
/// row it was written from, a digest of the body (the ETag, kept so a hit
/// needs no hashing), and the value's bytes; or `<version>:` alone, a
/// tombstone left by an invalidation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedEntry {
    pub version: i64,
    /// `(digest, body)`; `None` for a tombstone.
    pub value: Option<(String, Vec<u8>)>,
}

impl CachedEntry {
    fn encode(version: i64, value: Option<(&str, &[u8])>) -> Vec<u8> {
        let mut entry = Vec::with_capacity(64 + value.map_or(0, |(_, body)| body.len()));
        entry.extend_from_slice(version.to_string().as_bytes());
        entry.push(b':');
        if let Some((digest, body)) = value {
            entry.extend_from_slice(digest.as_bytes());
            entry.push(b':');
            entry.extend_from_slice(body);
        }
        entry
    }

    /// Whether a stored entry holds a value (is not a tombstone), without
    /// copying it.
    pub fn holds_value(entry: &[u8]) -> bool {
        split_at_colon(entry).is_some_and(|(_, rest)| !rest.is_empty())
    }

    /// Parses a stored entry; `None` for anything not in the format.
    pub fn decode(entry: &[u8]) -> Option<Self> {
        let (version, rest) = split_at_colon(entry)?;
        let version = std::str::from_utf8(version).ok()?.parse().ok()?;
        if rest.is_empty() {
            return Some(Self {
                version,
                value: None,
            });
        }
        let (digest, body) = split_at_colon(rest)?;
        let digest = std::str::from_utf8(digest).ok()?.to_string();
        Some(Self {
            version,
            value: Some((digest, body.to_vec())),
        })
    }
}

fn split_at_colon(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let at = bytes.iter().position(|&byte| byte == b':')?;
    Some((&bytes[..at], &bytes[at + 1..]))
}

#[derive(Clone)]
pub struct CacheStore {
    client: RedisClient,
    put_script: Script,
    release_script: Script,
}

impl CacheStore {
    pub fn new(client: RedisClient) -> Self {
        Self {
            client,
            put_script: Script::new(include_str!("scripts/cache_put.lua")),
            release_script: Script::new(include_str!("scripts/delete_if_equals.lua")),
        }
    }

    /// Takes the short lease that lets one instance load a missing entry
    /// (`SET NX PX`) and reads the entry again, in one round trip. Returns
    /// whether the lease is ours, and the entry.
    pub async fn take_fill_lease(
        &self,
        lease: &str,
        owner: &str,
        ttl: Duration,
        key: &str,
    ) -> Result<(bool, Option<CachedEntry>), RedisError> {
        let ttl_ms = ttl.as_millis() as u64;
        if self.client.is_cluster() {
            // Different slots: the two commands go out together, each to its master.
            let mut set = redis::cmd("SET");
            set.arg(lease).arg(owner).arg("NX").arg("PX").arg(ttl_ms);
            let mut get = redis::cmd("GET");
            get.arg(key);
            let (taken, entry) = tokio::join!(
                self.client.query::<Option<String>>(&set),
                self.client.query::<Option<Vec<u8>>>(&get)
            );
            return Ok((
                taken?.is_some(),
                entry?.as_deref().and_then(CachedEntry::decode),
            ));
        }
        let mut pipeline = redis::pipe();
        pipeline
            .cmd("SET")
            .arg(lease)
            .arg(owner)
            .arg("NX")
            .arg("PX")
            .arg(ttl_ms)
            .cmd("GET")
            .arg(key);
        let (taken, entry): (Option<String>, Option<Vec<u8>>) =
            self.client.query_pipeline(&pipeline).await?;
        Ok((
            taken.is_some(),
            entry.as_deref().and_then(CachedEntry::decode),
        ))
    }

    /// Gives the lease back, if it is still ours.
    pub async fn release_fill_lease(&self, lease: &str, owner: &str) -> Result<(), RedisError> {
        let mut invocation = self.release_script.key(lease);
        invocation.arg(owner);
        self.client.invoke::<i64>(&invocation).await.map(drop)
    }

    /// The entry under `key`; an entry in an unknown format counts as absent.
    pub async fn get(&self, key: &str) -> Result<Option<CachedEntry>, RedisError> {
        let entry: Option<Vec<u8>> = self.client.query(redis::cmd("GET").arg(key)).await?;
        Ok(entry.as_deref().and_then(CachedEntry::decode))
    }

    /// Stores `(digest, body)` (or, with `None`, a tombstone) at `version`
    /// unless a newer version is already there. Returns whether it was written.
    pub async fn put_unless_newer(
        &self,
        key: &str,
        version: i64,
        value: Option<(&str, &[u8])>,
        ttl: Duration,
    ) -> Result<bool, RedisError> {
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut invocation = self.put_script.key(key);
        invocation
            .arg(version)
            .arg(CachedEntry::encode(version, value))
            .arg(ttl_ms);
        self.client.invoke(&invocation).await
    }
}

#[cfg(test)]
mod tests {
    use super::CachedEntry;

    #[test]
    fn entries_round_trip_through_their_encoding() {
        let entry = CachedEntry::encode(7, Some(("abc", br#"{"id":1,"a":"b:c"}"#)));
        assert_eq!(entry, br#"7:abc:{"id":1,"a":"b:c"}"#);
        assert_eq!(
            CachedEntry::decode(&entry),
            Some(CachedEntry {
                version: 7,
                value: Some(("abc".into(), br#"{"id":1,"a":"b:c"}"#.to_vec()))
            })
        );
        assert_eq!(
            CachedEntry::decode(&CachedEntry::encode(9, None)),
            Some(CachedEntry {
                version: 9,
                value: None
            })
        );
        assert_eq!(CachedEntry::decode(b"not an entry"), None);
        assert!(CachedEntry::holds_value(&entry));
        assert!(!CachedEntry::holds_value(&CachedEntry::encode(9, None)));
    }
}
