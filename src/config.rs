//! Layered settings: `config/base.toml`, then `config/{APP_ENVIRONMENT}.toml`,
//! then `APP__SECTION__KEY` environment variables.

mod explain;

use std::path::Path;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// The secret shipped in `config/base.toml`; production refuses to run with it.
pub const DEFAULT_JWT_SECRET: &str = "insecure-default-secret-change-me-please";

/// Every JWT secret the repository ships (`config/base.toml`,
/// `.env.example`): production refuses each of them, as it does a short one.
pub const PLACEHOLDER_JWT_SECRETS: [&str; 2] = [
    DEFAULT_JWT_SECRET,
    "change-me-to-at-least-32-random-bytes-please",
];

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

#[derive(Debug, Clone, Deserialize)]
pub struct AuditSettings {
    /// Events older than this are deleted by the workers.
    pub retention_days: u64,
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

#[derive(Debug, Clone, Deserialize)]
pub struct RedisSettings {
    pub url: SecretString,
    /// Redis Cluster seed nodes, comma-separated (`host:port` or
    /// `redis://[user:password@]host:port`, `rediss://` for TLS). When set,
    /// everything runs on that cluster and `url` is not used.
    #[serde(default)]
    pub cluster_nodes: SecretString,
    /// PEM file of the CA that signed a `rediss://` server's certificate,
    /// when it is not a public one; empty: the public roots.
    pub tls_ca_file: String,
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
    /// `APP_ENVIRONMENT` (default `local`), and the process's `APP__…`
    /// variables.
    pub fn load(config_dir: &Path) -> anyhow::Result<Self> {
        Self::load_from(config_dir, std::env::vars())
    }

    /// [`Settings::load`] with these variables in place of the process's.
    /// Values are taken as written: `00123` stays the string `00123` (a
    /// number or a boolean is read from the text only where the setting is
    /// one).
    pub fn load_from(
        config_dir: &Path,
        variables: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<Self> {
        let variables: config::Map<String, String> = variables.into_iter().collect();
        let environment = variables
            .get("APP_ENVIRONMENT")
            .cloned()
            .unwrap_or_else(|| "local".to_string());
        explain::check_environment(&environment)?;
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
                    .source(Some(variables)),
            )
            .build()
            .and_then(config::Config::try_deserialize)
            .map_err(explain::explain)?;
        settings.check()?;
        Ok(settings)
    }

    /// Refuses settings that would run but be unsafe or nonsensical.
    pub fn check(&self) -> anyhow::Result<()> {
        let secret = self.auth.jwt_secret.expose_secret();
        if self.environment == Environment::Production
            && (PLACEHOLDER_JWT_SECRETS.contains(&secret) || secret.len() < 32)
        {
            anyhow::bail!(
                "refusing to start in production with the default JWT secret or one shorter \
                 than 32 bytes: set APP__AUTH__JWT_SECRET to at least 32 random bytes \
                 (e.g. `openssl rand -base64 48`)"
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

    /// The Redis Cluster seed nodes as URLs (`host:port` becomes
    /// `redis://host:port`); empty for a single Redis.
    pub fn cluster_seeds(&self) -> Vec<String> {
        self.cluster_nodes
            .expose_secret()
            .split(',')
            .map(str::trim)
            .filter(|node| !node.is_empty())
            .map(|node| {
                if node.contains("://") {
                    node.to_string()
                } else {
                    format!("redis://{node}")
                }
            })
            .collect()
    }

    /// Where Redis is, for logs: the single URL or the cluster's seeds,
    /// passwords hidden.
    pub fn shown(&self) -> String {
        let seeds = self.cluster_seeds();
        if seeds.is_empty() {
            redact_url(self.url.expose_secret())
        } else {
            let seeds: Vec<String> = seeds.iter().map(|seed| redact_url(seed)).collect();
            format!("cluster {}", seeds.join(","))
        }
    }

    /// Settings for a tool (a benchmark, an example) on a local Redis:
    /// small pools, generous timeouts.
    pub fn for_tool(url: &str, key_prefix: &str) -> Self {
        Self {
            url: SecretString::from(url.to_string()),
            cluster_nodes: SecretString::from(String::new()),
            tls_ca_file: String::new(),
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
    use std::path::PathBuf;

    use secrecy::ExposeSecret;

    use super::{PLACEHOLDER_JWT_SECRETS, Settings, redact_url};

    fn load(variables: &[(&str, &str)]) -> anyhow::Result<Settings> {
        let config_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config");
        Settings::load_from(
            &config_dir,
            variables
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string())),
        )
    }

    fn error_of(variables: &[(&str, &str)]) -> String {
        format!("{:#}", load(variables).expect_err("refused"))
    }

    #[test]
    fn values_arrive_exactly_as_written() {
        let settings = load(&[
            ("APP__MAIL__SMTP_PASSWORD", "00123"),
            ("APP__MAIL__SMTP_USERNAME", "TRUE"),
            ("APP__MAIL__FROM", "1e3"),
            ("APP__REDIS__KEY_PREFIX", "007:"),
            ("APP__AUTH__JWT_SECRET", "0x10"),
            // Numbers and switches are still read from their text.
            ("APP__SERVER__PORT", "09000"),
            ("APP__WORKER__ENABLED", "FALSE"),
        ])
        .unwrap();
        assert_eq!(settings.mail.smtp_password.expose_secret(), "00123");
        assert_eq!(settings.mail.smtp_username, "TRUE");
        assert_eq!(settings.mail.from, "1e3");
        assert_eq!(settings.redis.key_prefix, "007:");
        assert_eq!(settings.auth.jwt_secret.expose_secret(), "0x10");
        assert_eq!(settings.server.port, 9000);
        assert!(!settings.worker.enabled);
    }

    #[test]
    fn a_value_that_is_not_a_number_names_the_setting_and_what_it_must_be() {
        let message = error_of(&[("APP__SERVER__PORT", "abc")]);
        assert!(
            message.contains("server.port (APP__SERVER__PORT"),
            "{message}"
        );
        assert!(message.contains("\"abc\""), "{message}");
        assert!(message.contains("must be a whole number"), "{message}");
    }

    #[test]
    fn a_number_out_of_range_gives_the_range() {
        let message = error_of(&[("APP__SERVER__PORT", "99999")]);
        assert!(message.contains("APP__SERVER__PORT"), "{message}");
        assert!(message.contains("99999"), "{message}");
        assert!(message.contains("from 0 to 65535"), "{message}");
        assert!(!message.contains("16 bit"), "{message}");
    }

    #[test]
    fn an_unknown_choice_lists_the_valid_ones() {
        let message = error_of(&[("APP__MAIL__TRANSPORT", "smpt")]);
        assert!(
            message.contains("mail.transport (APP__MAIL__TRANSPORT"),
            "{message}"
        );
        assert!(message.contains("\"smpt\""), "{message}");
        assert!(
            message.contains("must be one of smtp, file, log"),
            "{message}"
        );
        assert!(!message.contains("variant"), "{message}");
        let message = error_of(&[("APP_ENVIRONMENT", "prod")]);
        assert!(message.contains("APP_ENVIRONMENT = \"prod\""), "{message}");
        assert!(message.contains("local, production, test"), "{message}");
    }

    #[test]
    fn a_switch_must_be_true_or_false() {
        let message = error_of(&[("APP__WORKER__ENABLED", "maybe")]);
        assert!(message.contains("APP__WORKER__ENABLED"), "{message}");
        assert!(message.contains("must be true or false"), "{message}");
    }

    #[test]
    fn production_refuses_every_shipped_placeholder_secret_with_one_message() {
        for secret in PLACEHOLDER_JWT_SECRETS.iter().chain(&["too-short"]) {
            let message = error_of(&[
                ("APP_ENVIRONMENT", "production"),
                ("APP__AUTH__JWT_SECRET", secret),
            ]);
            assert!(
                message.starts_with("refusing to start in production with the default JWT secret"),
                "{secret}: {message}"
            );
        }
        let secret = "a-real-secret-of-more-than-32-random-bytes";
        load(&[
            ("APP_ENVIRONMENT", "production"),
            ("APP__AUTH__JWT_SECRET", secret),
        ])
        .unwrap();
    }

    /// A placeholder added to a shipped file must be refused too.
    #[test]
    fn every_jwt_secret_the_repository_ships_is_a_refused_placeholder() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let mut shipped = Vec::new();
        for file in [
            ".env.example",
            "config/base.toml",
            "config/production.toml",
            "config/local.toml",
        ] {
            let text = std::fs::read_to_string(root.join(file)).unwrap();
            for line in text.lines() {
                let line = line.trim();
                if let Some(value) = line
                    .strip_prefix("APP__AUTH__JWT_SECRET=")
                    .or_else(|| line.strip_prefix("jwt_secret = "))
                {
                    shipped.push(value.trim_matches('"').to_string());
                }
            }
        }
        assert!(shipped.len() >= 2, "found {shipped:?}");
        for secret in shipped {
            assert!(
                PLACEHOLDER_JWT_SECRETS.contains(&secret.as_str()),
                "{secret}"
            );
        }
    }

    #[test]
    fn cluster_nodes_take_both_forms_and_hide_passwords() {
        let settings = load(&[(
            "APP__REDIS__CLUSTER_NODES",
            " 10.0.0.1:7000, redis://u:pw@10.0.0.2:7001 ,",
        )])
        .unwrap();
        assert_eq!(
            settings.redis.cluster_seeds(),
            ["redis://10.0.0.1:7000", "redis://u:pw@10.0.0.2:7001"]
        );
        assert_eq!(
            settings.redis.shown(),
            "cluster redis://10.0.0.1:7000,redis://u:***@10.0.0.2:7001"
        );
        assert!(load(&[]).unwrap().redis.cluster_seeds().is_empty());
    }

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
