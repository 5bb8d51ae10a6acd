//! Walking and deleting keys without blocking Redis: SCAN pages and UNLINK
//! batches, never KEYS.

use super::{RedisClient, RedisError};

/// One page of a SCAN: the next cursor (0 when the walk is over) and the keys.
pub struct ScanPage {
    pub cursor: u64,
    pub keys: Vec<Vec<u8>>,
}

#[derive(Clone)]
pub struct KeyScanner {
    client: RedisClient,
}

impl KeyScanner {
    pub fn new(client: RedisClient) -> Self {
        Self { client }
    }

    /// One SCAN step. `pattern` is a MATCH glob; `count` a hint of how many
    /// keys to look at. A page may be empty or repeat keys of earlier pages.
    ///
    /// On Redis Cluster each master holds its own keys: the walk would have
    /// to run once per master (with a cursor each), here.
    pub async fn page(
        &self,
        cursor: u64,
        pattern: &str,
        count: usize,
    ) -> Result<ScanPage, RedisError> {
        let (cursor, keys): (u64, Vec<Vec<u8>>) = self
            .client
            .query(
                redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(pattern)
                    .arg("COUNT")
                    .arg(count),
            )
            .await?;
        Ok(ScanPage { cursor, keys })
    }

    /// Deletes the keys (memory is freed off the main thread) and returns
    /// how many existed.
    pub async fn unlink(&self, keys: &[Vec<u8>]) -> Result<u64, RedisError> {
        if keys.is_empty() {
            return Ok(0);
        }
        self.client.query(redis::cmd("UNLINK").arg(keys)).await
    }

    /// Server-wide figures from `INFO`: (keyspace_hits, keyspace_misses, used_memory).
    pub async fn server_stats(&self) -> Result<(u64, u64, u64), RedisError> {
        let info: String = self.client.query(&redis::cmd("INFO")).await?;
        let field = |name: &str| {
            info.lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
                .and_then(|value| value.trim().parse().ok())
                .unwrap_or(0)
        };
        Ok((
            field("keyspace_hits"),
            field("keyspace_misses"),
            field("used_memory"),
        ))
    }
}
