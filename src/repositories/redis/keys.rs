//! The one place Redis key strings are built. Layout (contract):
//! `{prefix}cache:user:{id}`, `{prefix}session:{sid}`, ...
//!
//! One layout serves a single Redis and Redis Cluster alike. Keys that one
//! script or `MULTI` block touches together carry the same hash tag (the
//! part in `{...}`), so that on a cluster they share a slot: a user's lock
//! and its fence (`{user:ID}`), and every key of the job queue
//! (`{JOB_QUEUE_TAG}`). Every other key is used alone.

use std::marker::PhantomData;

use super::LockKeys;
use crate::domain::{SessionId, User, UserId};

/// A cache key tied to the type of the value stored under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheKey<T> {
    /// `{prefix}cache:{name}`, built once (it is on every cached read).
    key: String,
    prefix_len: usize,
    value: PhantomData<fn() -> T>,
}

const CACHE_NAMESPACE: &str = "cache:";

/// The hash tag of the job queue's keys.
pub const JOB_QUEUE_TAG: &str = "default";

impl<T> CacheKey<T> {
    fn new(prefix: &str, name: std::fmt::Arguments<'_>) -> Self {
        Self {
            key: format!("{prefix}{CACHE_NAMESPACE}{name}"),
            prefix_len: prefix.len(),
            value: PhantomData,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.key
    }

    /// The lease that lets one instance at a time load this entry. It lives
    /// under `lock:`, out of reach of cache eviction.
    pub fn fill_lease(&self) -> String {
        let (prefix, rest) = self.key.split_at(self.prefix_len);
        let name = &rest[CACHE_NAMESPACE.len()..];
        format!("{prefix}lock:fill:{name}")
    }
}

#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_string(),
        }
    }

    /// Everything admin eviction may touch lives under this.
    pub fn cache_namespace(&self) -> String {
        format!("{}{CACHE_NAMESPACE}", self.prefix)
    }

    pub fn user(&self, id: UserId) -> CacheKey<User> {
        CacheKey::new(&self.prefix, format_args!("user:{id}"))
    }

    /// Where sessions live (tracked by the near cache).
    pub fn session_namespace(&self) -> String {
        format!("{}session:", self.prefix)
    }

    /// A live session: what an access-token check reads (see `SessionStore`).
    pub fn session(&self, id: &SessionId) -> String {
        format!("{}session:{id}", self.prefix)
    }

    /// The per-user lock that serialises updates of one user: the lock and
    /// its fence share the hash tag `{user:ID}` (one script takes both).
    pub fn user_lock(&self, id: UserId) -> LockKeys {
        LockKeys {
            lock: format!("{}lock:{{user:{id}}}", self.prefix),
            fence: format!("{}lock:fence:{{user:{id}}}", self.prefix),
        }
    }

    /// The job stream, read by the workers' consumer group. Every key of
    /// the queue carries the tag `{default}`: scripts and `MULTI` blocks
    /// move jobs between them.
    pub fn jobs_stream(&self) -> String {
        format!("{}jobs:{{{JOB_QUEUE_TAG}}}:stream", self.prefix)
    }

    /// Jobs waiting for their next attempt, scored by when it is due (ms).
    pub fn jobs_delayed(&self) -> String {
        format!("{}jobs:{{{JOB_QUEUE_TAG}}}:delayed", self.prefix)
    }

    /// Jobs given up on.
    pub fn jobs_dead(&self) -> String {
        format!("{}jobs:{{{JOB_QUEUE_TAG}}}:dead", self.prefix)
    }

    /// Totals: retried, delivered.
    pub fn jobs_counters(&self) -> String {
        format!("{}jobs:{{{JOB_QUEUE_TAG}}}:counters", self.prefix)
    }

    /// Marks a job as done, so a redelivery is not done twice.
    pub fn job_done(&self, job_id: &str) -> String {
        format!("{}jobs:{{{JOB_QUEUE_TAG}}}:done:{job_id}", self.prefix)
    }

    /// The queue's keys as releases before hash tags named them (no tag):
    /// `[stream, delayed, dead, counters]`, moved to the tagged names at
    /// start (`JobQueue::migrate_untagged`).
    pub fn untagged_job_keys(&self) -> [String; 4] {
        ["stream", "delayed", "dead", "counters"].map(|name| format!("{}jobs:{name}", self.prefix))
    }

    /// A SCAN `MATCH` pattern for the done markers of releases before hash
    /// tags, and the prefix a marker's job id follows.
    pub fn untagged_job_done_pattern(&self) -> (String, String) {
        let prefix = format!("{}jobs:done:", self.prefix);
        (format!("{}*", escape_glob(&prefix)), prefix)
    }

    /// A rate-limit counter: `tier` names the limit, `subject` whom it counts.
    pub fn rate_limit(&self, tier: &str, subject: &str) -> String {
        format!("{}ratelimit:{tier}:{subject}", self.prefix)
    }

    /// A SCAN `MATCH` pattern for every key in the cache namespace.
    pub fn cache_pattern(&self) -> String {
        format!("{}*", escape_glob(&self.cache_namespace()))
    }

    /// A SCAN `MATCH` pattern for cache keys ending in `suffix`, taken literally.
    pub fn cache_suffix_pattern(&self, suffix: &str) -> String {
        format!(
            "{}*{}",
            escape_glob(&self.cache_namespace()),
            escape_glob(suffix)
        )
    }

    /// A SCAN `MATCH` pattern for cache keys whose name after the namespace
    /// starts with `prefix`, taken literally.
    pub fn cache_prefix_pattern(&self, prefix: &str) -> String {
        format!(
            "{}{}*",
            escape_glob(&self.cache_namespace()),
            escape_glob(prefix)
        )
    }
}

/// Escapes Redis glob characters (`* ? [ ] \`) so `MATCH` takes `text`
/// literally. (`^` and `-` only mean something inside brackets, and every
/// bracket is escaped.)
pub fn escape_glob(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len() + 8);
    for character in text.chars() {
        if matches!(character, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(character);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_contract_layout() {
        let keys = Keys::new("app:");
        assert_eq!(keys.user(UserId(42)).as_str(), "app:cache:user:42");
        assert_eq!(keys.user(UserId(42)).fill_lease(), "app:lock:fill:user:42");
        let sid = SessionId::parse("0123456789abcdef0123456789abcdef").unwrap();
        assert_eq!(
            keys.session(&sid),
            "app:session:0123456789abcdef0123456789abcdef"
        );
        assert!(
            keys.user(UserId(42))
                .as_str()
                .starts_with(&keys.cache_namespace())
        );
        assert!(!keys.session(&sid).starts_with(&keys.cache_namespace()));
        let lock = keys.user_lock(UserId(42));
        assert_eq!(lock.lock, "app:lock:{user:42}");
        assert_eq!(lock.fence, "app:lock:fence:{user:42}");
        assert_eq!(keys.jobs_stream(), "app:jobs:{default}:stream");
        assert_eq!(keys.job_done("j1"), "app:jobs:{default}:done:j1");
    }

    /// The part Redis Cluster hashes: what is inside the first `{...}`
    /// with something in it, else the whole key.
    fn hash_tag(key: &str) -> &str {
        if let Some(open) = key.find('{')
            && let Some(length) = key[open + 1..].find('}')
            && length > 0
        {
            return &key[open + 1..open + 1 + length];
        }
        key
    }

    #[test]
    fn keys_used_together_share_a_hash_tag() {
        let keys = Keys::new("app:");
        let lock = keys.user_lock(UserId(7));
        assert_eq!(hash_tag(&lock.lock), hash_tag(&lock.fence));
        let queue = [
            keys.jobs_stream(),
            keys.jobs_delayed(),
            keys.jobs_dead(),
            keys.jobs_counters(),
            keys.job_done("abc"),
        ];
        assert!(queue.iter().all(|key| hash_tag(key) == JOB_QUEUE_TAG));
        // Cache keys keep their form: no tag, so suffix eviction means the same.
        assert_eq!(hash_tag(keys.user(UserId(7)).as_str()), "app:cache:user:7");
    }

    #[test]
    fn glob_characters_are_escaped_and_others_kept() {
        assert_eq!(escape_glob(r"a*b?c[d]e\f"), r"a\*b\?c\[d\]e\\f");
        assert_eq!(escape_glob("user:42-é^"), "user:42-é^");
        let keys = Keys::new("app:");
        assert_eq!(keys.cache_suffix_pattern("*"), r"app:cache:*\*");
        assert_eq!(keys.cache_prefix_pattern("user:"), "app:cache:user:*");
        assert_eq!(keys.cache_pattern(), "app:cache:*");
    }
}
