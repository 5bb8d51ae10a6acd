//! One integration-test binary: the real HTTP app against real Redis and a
//! real, fresh database, on SQLite and on PostgreSQL.

mod child;
mod fault_proxy;
mod faults;
mod helpers;
mod hostile;
mod mailbox;
mod smtp_sink;
mod test_redis;

mod accounts;
mod admin_cache;
mod audit;
mod browser;
mod cache_consistency;
mod cluster;
mod console;
mod edges;
mod email_verification;
mod errors;
mod glob_property;
mod grafana;
mod hardening;
mod jobs;
mod lifecycle;
mod locks;
mod near_cache;
mod openapi;
mod operations;
mod operator;
mod password_reset;
mod process;
mod pruning;
mod rate_limits;
mod redis_cluster;
mod redis_outage;
mod redis_server;
mod sessions;
mod tls;
mod upgrade;
mod upgrade_accounts;
mod users;
