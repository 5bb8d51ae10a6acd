//! Reading the layers: files, then `APP__…` variables, values kept as written.

use std::path::Path;

use super::{Settings, explain};

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
}

/// The repository's own `config/` with these variables in place of the
/// process's, for the tests of every part of the settings.
#[cfg(test)]
pub(super) mod test_support {
    use std::path::PathBuf;

    use crate::config::Settings;

    pub(in crate::config) fn load(variables: &[(&str, &str)]) -> anyhow::Result<Settings> {
        let config_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config");
        Settings::load_from(
            &config_dir,
            variables
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string())),
        )
    }

    pub(in crate::config) fn error_of(variables: &[(&str, &str)]) -> String {
        format!("{:#}", load(variables).expect_err("refused"))
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::test_support::{error_of, load};

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
}
