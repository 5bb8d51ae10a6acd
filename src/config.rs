//! Layered settings: `config/base.toml`, then `config/{APP_ENVIRONMENT}.toml`,
//! then `APP__SECTION__KEY` environment variables.

use std::path::Path;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// The secret shipped in `config/base.toml`; production refuses to run with it.
pub const DEFAULT_JWT_SECRET: &str = "insecure-default-secret-change-me-please";

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub environment: Environment,
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub auth: AuthSettings,
    pub cache: CacheSettings,
    pub rate_limit: RateLimitSettings,
    pub locks: LockSettings,
    pub worker: WorkerSettings,
    pub jobs: JobSettings,
    pub mail: MailSettings,
    pub cors: CorsSettings,
    pub log: LogSettings,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Local,
    Production,
    Test,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
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

#[derive(Debug, Clone, Deserialize)]
pub struct RedisSettings {
    pub url: SecretString,
    pub key_prefix: String,
    pub pool_max_size: usize,
    pub pool_min_idle: usize,
    /// Pooled connections that requests share (multiplexed).
    pub lanes: usize,
    pub wait_timeout_ms: u64,
    pub create_timeout_ms: u64,
    pub recycle_timeout_ms: u64,
    pub operation_timeout_ms: u64,
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

impl Settings {
    /// Reads the layers from `config_dir` for the environment named by
    /// `APP_ENVIRONMENT` (default `local`).
    pub fn load(config_dir: &Path) -> anyhow::Result<Self> {
        let environment = std::env::var("APP_ENVIRONMENT").unwrap_or_else(|_| "local".to_string());
        let settings: Settings = config::Config::builder()
            .set_default("environment", environment.as_str())?
            .add_source(config::File::from(config_dir.join("base.toml")))
            .add_source(
                config::File::from(config_dir.join(format!("{environment}.toml"))).required(false),
            )
            .add_source(
                config::Environment::with_prefix("APP")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true),
            )
            .build()?
            .try_deserialize()?;
        settings.check()?;
        Ok(settings)
    }

    /// Refuses settings that would run but be unsafe or nonsensical.
    pub fn check(&self) -> anyhow::Result<()> {
        let secret = self.auth.jwt_secret.expose_secret();
        if self.environment == Environment::Production
            && (secret == DEFAULT_JWT_SECRET || secret.len() < 32)
        {
            anyhow::bail!(
                "refusing to start in production with the default JWT secret or one shorter \
                 than 32 bytes: set APP__AUTH__JWT_SECRET"
            );
        }
        if self.auth.token_ttl_seconds == 0 || self.cache.ttl_seconds == 0 {
            anyhow::bail!("auth.token_ttl_seconds and cache.ttl_seconds must be positive");
        }
        if self.auth.refresh_ttl_seconds < self.auth.token_ttl_seconds {
            anyhow::bail!("auth.refresh_ttl_seconds must be at least auth.token_ttl_seconds");
        }
        if self.auth.verify_ttl_seconds == 0 || self.auth.reset_ttl_seconds == 0 {
            anyhow::bail!("auth.verify_ttl_seconds and auth.reset_ttl_seconds must be positive");
        }
        if !(self.mail.link_base_url.starts_with("http://")
            || self.mail.link_base_url.starts_with("https://"))
        {
            anyhow::bail!("mail.link_base_url must be an http:// or https:// URL");
        }
        if self.auth.max_sessions == 0 {
            anyhow::bail!("auth.max_sessions must be at least 1");
        }
        if self.auth.refresh_cookie
            && self
                .cors
                .allowed_origins
                .split(',')
                .any(|origin| origin.trim() == "*")
        {
            anyhow::bail!(
                "auth.refresh_cookie cannot be on while cors.allowed_origins is \"*\": a \
                 credentialed cookie may only go to origins listed by name"
            );
        }
        let limits = &self.rate_limit;
        if limits.requests == 0
            || limits.window_seconds == 0
            || limits.login_requests == 0
            || limits.login_window_seconds == 0
            || limits.register_requests == 0
            || limits.register_window_seconds == 0
        {
            anyhow::bail!("rate_limit requests and windows must be positive");
        }
        let server = &self.server;
        if server.backlog == 0
            || server.body_timeout_ms == 0
            || server.max_connections_per_client == 0
            || self.auth.hash_queue_capacity == 0
        {
            anyhow::bail!(
                "server.backlog, server.body_timeout_ms, server.max_connections_per_client and \
                 auth.hash_queue_capacity must be positive"
            );
        }
        if self.jobs.max_attempts == 0 || self.worker.concurrency == 0 {
            anyhow::bail!("jobs.max_attempts and worker.concurrency must be positive");
        }
        Ok(())
    }
}

impl DatabaseSettings {
    pub fn acquire_timeout(&self) -> Duration {
        Duration::from_millis(self.acquire_timeout_ms)
    }
}

impl RedisSettings {
    pub fn operation_timeout(&self) -> Duration {
        Duration::from_millis(self.operation_timeout_ms)
    }

    /// Settings for a tool (a benchmark, an example) on a local Redis:
    /// small pools, generous timeouts.
    pub fn for_tool(url: &str, key_prefix: &str) -> Self {
        Self {
            url: SecretString::from(url.to_string()),
            key_prefix: key_prefix.to_string(),
            pool_max_size: 4,
            pool_min_idle: 1,
            lanes: 2,
            wait_timeout_ms: 1000,
            create_timeout_ms: 1000,
            recycle_timeout_ms: 1000,
            operation_timeout_ms: 5000,
        }
    }
}

/// A URL with its password replaced, safe to print.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
            None if scheme.starts_with("redis") => format!("{scheme}://***@{host}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn redact_url_hides_the_password_only() {
        assert_eq!(
            redact_url("redis://user:s3cret@host:6379/0"),
            "redis://user:***@host:6379/0"
        );
        assert_eq!(redact_url("redis://:s3cret@host"), "redis://:***@host");
        assert_eq!(redact_url("redis://host:6379"), "redis://host:6379");
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1/db"),
            "postgres://postgres@127.0.0.1/db"
        );
    }
}
