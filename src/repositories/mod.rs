//! Data access only: SQL and Redis, no HTTP and no business rules.

pub mod redis;
pub mod sql;
