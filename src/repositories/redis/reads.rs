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

    /// Both values in one round trip (MGET).
    pub async fn get_pair(
        &self,
        first: &str,
        second: &str,
    ) -> Result<(Option<Vec<u8>>, Option<Vec<u8>>), RedisError> {
        self.client
            .query(redis::cmd("MGET").arg(first).arg(second))
            .await
    }
}
