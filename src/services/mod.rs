//! The rules: who may do what, cache-aside and invalidation, sessions.
//! Services return domain values and `AppError`, never HTTP responses.

pub mod account_mail;
pub mod accounts;
pub mod audit;
pub mod auth;
pub mod cache;
pub mod cache_admin;
pub mod health;
pub mod jobs;
pub mod locks;
pub mod mail;
pub mod mail_templates;
pub mod metrics;
pub mod outbox;
pub mod passwords;
pub mod rate_limit;
pub mod reads;
pub mod refresh_tokens;
pub mod retry;
pub mod sessions;
pub mod single_flight;
pub mod tokens;
pub mod users;
