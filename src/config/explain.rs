//! Configuration errors in the operator's terms: which setting (and the
//! variable that sets it), the value given, and what it may be. The config
//! crate's own messages speak of Rust types ("expected an unsigned 16 bit
//! integer", "enum Environment does not have variant constructor prod").

use std::fmt;

use config::ConfigError;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use super::{Environment, LogFormat, MailTransport, SmtpTls};

/// `APP_ENVIRONMENT` chooses a file as well as a value: check it first.
pub(super) fn check_environment(name: &str) -> anyhow::Result<()> {
    let valid = variants::<Environment>();
    if valid.contains(&name) {
        Ok(())
    } else {
        anyhow::bail!(
            "APP_ENVIRONMENT = {name:?} is not a known environment: use one of {}",
            valid.join(", ")
        )
    }
}

pub(super) fn explain(error: ConfigError) -> anyhow::Error {
    match error {
        ConfigError::Type {
            origin,
            unexpected,
            expected,
            key,
        } => anyhow::anyhow!(
            "{} = {}: must be {}",
            setting(key.as_deref(), origin.as_deref()),
            shown_value(&unexpected.to_string()),
            in_words(expected)
        ),
        ConfigError::At { error, origin, key } => match *error {
            ConfigError::Message(message) => {
                let setting = setting(key.as_deref(), origin.as_deref());
                match unknown_variant(&message) {
                    Some((value, valid)) => anyhow::anyhow!(
                        "{setting} = {value:?}: must be one of {}",
                        valid.join(", ")
                    ),
                    None => anyhow::anyhow!("{setting}: {message}"),
                }
            }
            inner => anyhow::anyhow!("{}: {inner}", setting(key.as_deref(), origin.as_deref())),
        },
        ConfigError::NotFound(key) => {
            anyhow::anyhow!("{} is missing", setting(Some(&key), None))
        }
        ConfigError::FileParse { uri, cause } => anyhow::anyhow!(
            "cannot read the configuration file {}: {cause}",
            uri.as_deref().unwrap_or("(unnamed)")
        ),
        other => anyhow::anyhow!("invalid configuration: {other}"),
    }
}

/// `server.port (APP__SERVER__PORT, from the environment)`.
fn setting(key: Option<&str>, origin: Option<&str>) -> String {
    let key = key.unwrap_or("a setting");
    let variable = format!("APP__{}", key.replace('.', "__").to_uppercase());
    match origin {
        Some(origin) => format!("{key} ({variable}, from {origin})"),
        None => format!("{key} ({variable})"),
    }
}

/// The value as given: the config crate describes it as "string \"abc\"" or
/// "64-bit integer `99999`".
fn shown_value(unexpected: &str) -> String {
    if let Some(text) = unexpected.strip_prefix("string ") {
        return text.to_string();
    }
    match unexpected.split('`').nth(1) {
        Some(value) => value.to_string(),
        None => unexpected.to_string(),
    }
}

fn in_words(expected: &str) -> String {
    match expected {
        "an unsigned 8 bit integer" => "a whole number from 0 to 255".into(),
        "an unsigned 16 bit integer" => "a whole number from 0 to 65535".into(),
        "an unsigned 32 bit integer" => "a whole number from 0 to 4294967295".into(),
        // sic: the config crate's wording for u64 and usize
        "an unsigned u64 bit integer" | "an unsigned 64 bit integer" => {
            "a whole number, 0 or more".into()
        }
        "an integer" | "an signed 64 bit integer" | "a signed 64 bit integer" => {
            "a whole number".into()
        }
        "a boolean" => "true or false".into(),
        "a floating point" => "a number".into(),
        other => other.to_string(),
    }
}

/// "enum MailTransport does not have variant constructor smpt" → the value
/// and the valid ones.
fn unknown_variant(message: &str) -> Option<(String, &'static [&'static str])> {
    let rest = message.strip_prefix("enum ")?;
    let (name, value) = rest.split_once(" does not have variant constructor ")?;
    let valid = match name {
        "Environment" => variants::<Environment>(),
        "MailTransport" => variants::<MailTransport>(),
        "SmtpTls" => variants::<SmtpTls>(),
        "LogFormat" => variants::<LogFormat>(),
        _ => return None,
    };
    Some((value.to_string(), valid))
}

/// The names serde accepts for an enum, as its derive declares them: the
/// list in a message can never drift from the type.
fn variants<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    match T::deserialize(VariantRecorder) {
        Err(Recorded(variants)) => variants,
        Ok(_) => &[],
    }
}

struct VariantRecorder;

#[derive(Debug)]
struct Recorded(&'static [&'static str]);

impl fmt::Display for Recorded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl std::error::Error for Recorded {}

impl de::Error for Recorded {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Recorded(&[])
    }
}

impl<'de> Deserializer<'de> for VariantRecorder {
    type Error = Recorded;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Recorded> {
        Err(Recorded(&[]))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Recorded> {
        Err(Recorded(variants))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct identifier ignored_any
    }
}
