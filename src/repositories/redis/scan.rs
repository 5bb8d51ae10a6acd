//! Walking and deleting keys without blocking Redis: SCAN pages and UNLINK
//! batches, never KEYS.
//!
//! On Redis Cluster each master holds its own keys: the walk SCANs every
//! master in turn, each with a cursor of its own. When a pass is over the
//! slot map is read again; if it changed during the pass (a failover, a
//! slot moved by a resharding), a key may have moved from a master not yet
//! walked to one already walked, so the walk starts another pass over the
//! masters of the new map. Callers that count say so: a page tells when
//! the keys seen so far may be seen again.

use super::client::{NodeAddress, SlotMap};
use super::{RedisClient, RedisError};

/// Passes over a cluster that keeps changing before the walk gives up.
const MAX_PASSES: u32 = 5;

/// Where a walk is.
#[derive(Debug, Clone)]
pub enum ScanCursor {
    /// A single Redis: SCAN's own cursor.
    Single(u64),
    Cluster(ClusterWalk),
}

#[derive(Debug, Clone, Default)]
pub struct ClusterWalk {
    /// The slot map when this pass began; empty before the first page.
    topology: SlotMap,
    masters: Vec<NodeAddress>,
    index: usize,
    cursor: u64,
    passes: u32,
}

/// One page of a walk: the keys, where to go on (`None` when the walk is
/// over), and whether the walk starts over from here (keys already seen
/// will be seen again; a count should start again at 0).
pub struct ScanPage {
    pub next: Option<ScanCursor>,
    pub keys: Vec<Vec<u8>>,
    pub starts_over: bool,
}

#[derive(Clone)]
pub struct KeyScanner {
    client: RedisClient,
}

fn masters_of(topology: &SlotMap) -> Vec<NodeAddress> {
    let mut masters: Vec<NodeAddress> = topology.iter().map(|(_, _, node)| node.clone()).collect();
    masters.sort();
    masters.dedup();
    masters
}

impl KeyScanner {
    pub fn new(client: RedisClient) -> Self {
        Self { client }
    }

    /// Where a walk begins.
    pub fn start(&self) -> ScanCursor {
        if self.client.is_cluster() {
            ScanCursor::Cluster(ClusterWalk::default())
        } else {
            ScanCursor::Single(0)
        }
    }

    /// One SCAN step. `pattern` is a MATCH glob; `count` a hint of how many
    /// keys to look at. A page may be empty or repeat keys of earlier pages.
    pub async fn page(
        &self,
        cursor: ScanCursor,
        pattern: &str,
        count: usize,
    ) -> Result<ScanPage, RedisError> {
        let mut walk = match cursor {
            ScanCursor::Single(cursor) => {
                let (cursor, keys) = self.client.query(&scan(cursor, pattern, count)).await?;
                return Ok(ScanPage {
                    next: (cursor != 0).then_some(ScanCursor::Single(cursor)),
                    keys,
                    starts_over: false,
                });
            }
            ScanCursor::Cluster(walk) => walk,
        };
        if walk.masters.is_empty() {
            walk.topology = self.client.slot_map().await?;
            walk.masters = masters_of(&walk.topology);
            if walk.masters.is_empty() {
                return Err(RedisError::Setup(
                    "the cluster has no master with slots".into(),
                ));
            }
        }
        let node = &walk.masters[walk.index];
        let (cursor, keys): (u64, Vec<Vec<u8>>) = self
            .client
            .query_node(node, &scan(walk.cursor, pattern, count))
            .await?;
        if cursor != 0 {
            walk.cursor = cursor;
            return Ok(ScanPage {
                next: Some(ScanCursor::Cluster(walk)),
                keys,
                starts_over: false,
            });
        }
        walk.index += 1;
        walk.cursor = 0;
        if walk.index < walk.masters.len() {
            return Ok(ScanPage {
                next: Some(ScanCursor::Cluster(walk)),
                keys,
                starts_over: false,
            });
        }
        let now = self.client.slot_map().await?;
        if now == walk.topology {
            return Ok(ScanPage {
                next: None,
                keys,
                starts_over: false,
            });
        }
        if walk.passes + 1 >= MAX_PASSES {
            return Err(RedisError::Setup(format!(
                "the cluster's slots kept moving during {MAX_PASSES} passes of a key walk"
            )));
        }
        tracing::info!("cluster slots changed during a key walk; walking every master again");
        Ok(ScanPage {
            next: Some(ScanCursor::Cluster(ClusterWalk {
                masters: masters_of(&now),
                topology: now,
                index: 0,
                cursor: 0,
                passes: walk.passes + 1,
            })),
            keys,
            starts_over: true,
        })
    }

    /// Deletes the keys (memory is freed off the main thread) and returns
    /// how many existed. On a cluster the client splits the UNLINK by slot,
    /// sends each part to its master, and adds up the answers.
    pub async fn unlink(&self, keys: &[Vec<u8>]) -> Result<u64, RedisError> {
        if keys.is_empty() {
            return Ok(0);
        }
        self.client.query(redis::cmd("UNLINK").arg(keys)).await
    }

    /// Server-wide figures from `INFO` (summed over the masters of a
    /// cluster): (keyspace_hits, keyspace_misses, used_memory).
    pub async fn server_stats(&self) -> Result<(u64, u64, u64), RedisError> {
        let nodes = if self.client.is_cluster() {
            self.client.masters().await?
        } else {
            Vec::new()
        };
        let info = redis::cmd("INFO");
        let infos: Vec<String> = if nodes.is_empty() {
            vec![self.client.query(&info).await?]
        } else {
            futures_util::future::try_join_all(
                nodes.iter().map(|node| self.client.query_node(node, &info)),
            )
            .await?
        };
        let mut totals = (0, 0, 0);
        for info in &infos {
            let field = |name: &str| -> u64 {
                info.lines()
                    .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
                    .and_then(|value| value.trim().parse().ok())
                    .unwrap_or(0)
            };
            totals.0 += field("keyspace_hits");
            totals.1 += field("keyspace_misses");
            totals.2 += field("used_memory");
        }
        Ok(totals)
    }
}

fn scan(cursor: u64, pattern: &str, count: usize) -> redis::Cmd {
    let mut command = redis::cmd("SCAN");
    command
        .arg(cursor)
        .arg("MATCH")
        .arg(pattern)
        .arg("COUNT")
        .arg(count);
    command
}
