//! Layered settings: `config/base.toml`, then `config/{APP_ENVIRONMENT}.toml`,
//! then `APP__SECTION__KEY` environment variables.

mod check;
mod explain;
mod load;
mod redact;
mod redis;
mod sections;

use serde::Deserialize;

pub use check::{DEFAULT_JWT_SECRET, PLACEHOLDER_JWT_SECRETS};
pub use redact::redact_url;
pub use redis::RedisSettings;
pub use sections::{
    AuditSettings, AuthSettings, CacheSettings, CorsSettings, DatabaseSettings, JobSettings,
    LockSettings, LogFormat, LogSettings, MailSettings, MailTransport, RateLimitSettings,
    ServerSettings, SmtpTls, WorkerSettings,
};

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
    pub audit: AuditSettings,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Local,
    Production,
    Test,
}
