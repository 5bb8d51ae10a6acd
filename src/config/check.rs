//! Settings that would run but be unsafe or nonsensical are refused at
//! start-up.

use secrecy::ExposeSecret;

use super::{Environment, Settings};

/// The secret shipped in `config/base.toml`; production refuses to run with it.
pub const DEFAULT_JWT_SECRET: &str = "insecure-default-secret-change-me-please";

/// Every JWT secret the repository ships (`config/base.toml`,
/// `.env.example`): production refuses each of them, as it does a short one.
pub const PLACEHOLDER_JWT_SECRETS: [&str; 2] = [
    DEFAULT_JWT_SECRET,
    "change-me-to-at-least-32-random-bytes-please",
];

impl Settings {
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

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::PLACEHOLDER_JWT_SECRETS;
    use crate::config::load::test_support::{error_of, load};

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
}
