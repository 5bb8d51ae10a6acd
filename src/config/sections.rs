//! The settings of each section but `redis` (see `redis.rs`), as read from
//! the files and variables.

use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct AuditSettings {
    /// Events older than this are deleted by the workers.
    pub retention_days: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    /// `/metrics` on a listener of its own, on `metrics_host`, instead of
    /// on the public port; unset: on the public port.
    pub metrics_port: Option<u16>,
    pub metrics_host: String,
    pub workers: usize,
    pub shutdown_timeout_seconds: u64,
    /// Connections the kernel queues before they are accepted.
    pub backlog: u32,
    /// Longest a client may take to send a request body once its headers
    /// are in; then 408 and the connection is closed.
    pub body_timeout_ms: u64,
    /// Open connections one client address may hold at once (trusted
    /// proxies are not counted).
    pub max_connections_per_client: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    pub url: SecretString,
    pub max_connections: u32,
    pub acquire_timeout_ms: u64,
    /// PostgreSQL: longest a statement may run (lock waits included).
    pub statement_timeout_ms: u64,
}

impl DatabaseSettings {
    pub fn acquire_timeout(&self) -> Duration {
        Duration::from_millis(self.acquire_timeout_ms)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    pub jwt_secret: SecretString,
    /// Lifetime of access tokens.
    pub token_ttl_seconds: u64,
    pub hash_concurrency: usize,
    /// How long a session can be refreshed, counted from login.
    pub refresh_ttl_seconds: u64,
    /// A spent refresh token presented again within this long still works.
    pub refresh_reuse_grace_seconds: u64,
    /// A new login ends every other session of the user.
    pub single_session: bool,
    /// Live sessions per user at most, when not single.
    pub max_sessions: u32,
    /// Login and refresh also set the refresh token as an HttpOnly cookie.
    pub refresh_cookie: bool,
    /// Password hashes that may wait for a hashing thread, per kind
    /// (sign-ins; registrations); more are answered 503.
    pub hash_queue_capacity: usize,
    /// How long a mailed verification link works.
    pub verify_ttl_seconds: u64,
    /// How long a mailed password-reset link works.
    pub reset_ttl_seconds: u64,
    /// Login answers 403 `email_not_verified` until the address is verified.
    pub require_verified_email: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CacheSettings {
    pub ttl_seconds: u64,
    /// An in-process copy of cached users and sessions in front of Redis.
    pub near_enabled: bool,
    /// Values the near cache holds at most.
    pub near_capacity: usize,
    /// Longest a value stays in the near cache.
    pub near_ttl_seconds: u64,
    /// How often the near cache's invalidation link is PINGed.
    pub near_heartbeat_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RateLimitSettings {
    pub enabled: bool,
    /// Requests per client IP per window, across all instances.
    pub requests: u32,
    pub window_seconds: u64,
    /// Login attempts per client IP, and per account, per login window.
    pub login_requests: u32,
    pub login_window_seconds: u64,
    /// Registrations per client IP per registration window.
    pub register_requests: u32,
    pub register_window_seconds: u64,
    /// Comma-separated addresses or CIDR ranges whose `X-Forwarded-For` /
    /// `Forwarded` headers are believed.
    pub trusted_proxies: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LockSettings {
    /// Lease of a lock; a watchdog extends it while the holder works.
    pub lease_ms: u64,
    /// The watchdog stops extending after this long.
    pub max_hold_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct WorkerSettings {
    /// Run the job workers inside `serve`.
    pub enabled: bool,
    /// Workers per process.
    pub concurrency: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct JobSettings {
    /// How long a taken job may go unacknowledged before another worker
    /// takes it over.
    pub visibility_timeout_seconds: u64,
    /// Attempts before a job goes to the dead-letter list.
    pub max_attempts: u32,
    /// First retry delay; each further one doubles (plus jitter).
    pub retry_base_ms: u64,
    pub retry_max_ms: u64,
    /// A job still not done this long after it was queued is queued again
    /// (Redis may have lost it). Longer than any retry backoff.
    pub relay_again_after_seconds: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailTransport {
    Smtp,
    File,
    Log,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    None,
    Starttls,
    Tls,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MailSettings {
    pub transport: MailTransport,
    pub from: String,
    pub smtp_host: String,
    pub smtp_port: u16,
    pub smtp_tls: SmtpTls,
    pub smtp_username: String,
    pub smtp_password: SecretString,
    pub smtp_timeout_seconds: u64,
    pub file_dir: String,
    /// The frontend that verification and reset links point to.
    pub link_base_url: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CorsSettings {
    /// Comma-separated origins (`https://app.example.com`) allowed to call
    /// the API from a browser; empty: none.
    pub allowed_origins: String,
    pub allow_credentials: bool,
    pub max_age_seconds: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LogSettings {
    pub level: String,
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}
