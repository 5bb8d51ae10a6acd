//! The Redis side: one pool, every operation bounded in time, and one store
//! per kind of data. Key strings come only from [`keys`].

mod cache;
mod client;
mod jobs;
pub mod keys;
mod locks;
mod near_cache;
mod rate_limits;
mod reads;
mod scan;
mod sessions;
mod tracking;

pub use cache::{CacheStore, CachedEntry};
pub use client::{NodeAddress, RedisClient, RedisError};
pub use jobs::{BlockingConnection, Delivery, JobQueue};
pub use keys::{CacheKey, Keys};
pub use locks::{Acquisition, LockKeys, LockStore};
pub use near_cache::{NearCache, NearCacheStats, Ticket};
pub use rate_limits::RateLimitStore;
pub use reads::KeyReader;
pub use scan::{KeyScanner, ScanCursor, ScanPage};
pub use sessions::SessionStore;
pub use tracking::{CLIENT_NAME as TRACKING_CLIENT_NAME, TrackingLink};
