use super::{RedisClient, RedisError};

/// Plain reads of raw values, for callers that combine keys of different
/// kinds in one round trip (a session and a cached user on every
/// authenticated read).
#[derive(Clone)]
pub struct KeyReader {
    client: RedisClient,
}

impl KeyReader {
    pub fn new(client: RedisClient) -> Self {
        Self { client }
    }

    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, RedisError> {
        self.client.query(redis::cmd("GET").arg(key)).await
    }

    /// Both values in one round trip: MGET on a single Redis; on a cluster,
    /// where the two keys live in different slots (and maybe on different
    /// masters), two GETs sent together, each routed to its own master.
    pub async fn get_pair(
        &self,
        first: &str,
        second: &str,
    ) -> Result<(Option<Vec<u8>>, Option<Vec<u8>>), RedisError> {
        if self.client.is_cluster() {
            let (a, b) = tokio::join!(self.get(first), self.get(second));
            return Ok((a?, b?));
        }
        self.client
            .query(redis::cmd("MGET").arg(first).arg(second))
            .await
    }
}
