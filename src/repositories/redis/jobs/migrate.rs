//! The move from the keys of a release before hash tags.

use redis::Script;

use super::JobQueue;
use crate::repositories::redis::RedisError;

impl JobQueue {
    /// Moves the queue of a release before hash tags (`{prefix}jobs:stream`
    /// and its siblings, `{prefix}jobs:done:*`) to the tagged keys, so no
    /// waiting, delayed or dead job is lost in an upgrade. Run at every
    /// start after `ensure_group`; costs one EXISTS when there is nothing to
    /// move. Not on a cluster: no release before the tags ran on one.
    /// Returns how many jobs were moved.
    pub async fn migrate_untagged(&self) -> Result<u64, RedisError> {
        if self.client.is_cluster() {
            return Ok(0);
        }
        let script = Script::new(include_str!("../scripts/jobs_migrate_untagged.lua"));
        let mut invocation = script.prepare_invoke();
        for key in self.keys.untagged_job_keys() {
            invocation.key(key);
        }
        invocation
            .key(self.keys.jobs_stream())
            .key(self.keys.jobs_delayed())
            .key(self.keys.jobs_dead())
            .key(self.keys.jobs_counters());
        let moved: i64 = self.client.invoke(&invocation).await?;
        if moved < 0 {
            return Ok(0);
        }
        // The done markers that stop a redelivered job from being done twice.
        let (pattern, old_prefix) = self.keys.untagged_job_done_pattern();
        let mut cursor = 0u64;
        loop {
            let (next, markers): (u64, Vec<String>) = self
                .client
                .query(
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(1000),
                )
                .await?;
            for marker in markers {
                if let Some(job_id) = marker.strip_prefix(&old_prefix) {
                    // RENAME keeps the TTL; a marker gone meanwhile is no loss.
                    let _: Result<(), RedisError> = self
                        .client
                        .query(
                            redis::cmd("RENAME")
                                .arg(&marker)
                                .arg(self.keys.job_done(job_id)),
                        )
                        .await;
                }
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        tracing::info!(moved, "job queue moved to its hash-tagged keys");
        Ok(moved as u64)
    }
}
