//! What an admin eviction selects: the cache keys whose name, after the
//! namespace, ends or starts with a literal text.

use serde_json::json;

use crate::error::FieldError;
use crate::repositories::redis::Keys;

/// Longer values are refused: crafted MATCH patterns have hung servers.
pub const MAX_SELECTOR_LENGTH: usize = 256;
/// Which cache keys to evict, by the part after the namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    Suffix(String),
    Prefix(String),
}

impl Selector {
    /// Exactly one of the two, non-empty, at most `MAX_SELECTOR_LENGTH`
    /// bytes; taken literally.
    pub fn parse(suffix: Option<String>, prefix: Option<String>) -> Result<Self, FieldError> {
        let selector = match (suffix, prefix) {
            (Some(suffix), None) => Selector::Suffix(suffix),
            (None, Some(prefix)) => Selector::Prefix(prefix),
            (None, None) => {
                return Err(FieldError::new(
                    "suffix",
                    "give exactly one of suffix or prefix",
                ));
            }
            (Some(_), Some(_)) => {
                return Err(FieldError::new(
                    "prefix",
                    "give only one of suffix or prefix",
                ));
            }
        };
        let (field, value) = match &selector {
            Selector::Suffix(value) => ("suffix", value),
            Selector::Prefix(value) => ("prefix", value),
        };
        if value.is_empty() {
            return Err(FieldError::new(field, "must not be empty"));
        }
        if value.len() > MAX_SELECTOR_LENGTH {
            return Err(FieldError::new(
                field,
                format!("must be at most {MAX_SELECTOR_LENGTH} bytes long"),
            ));
        }
        Ok(selector)
    }

    /// How the audit log records it.
    pub(super) fn details(&self) -> serde_json::Value {
        match self {
            Selector::Suffix(suffix) => json!({"suffix": suffix, "prefix": null}),
            Selector::Prefix(prefix) => json!({"suffix": null, "prefix": prefix}),
        }
    }

    pub(super) fn pattern(&self, keys: &Keys) -> String {
        match self {
            Selector::Suffix(suffix) => keys.cache_suffix_pattern(suffix),
            Selector::Prefix(prefix) => keys.cache_prefix_pattern(prefix),
        }
    }

    /// The literal test every key must pass, whatever SCAN returned.
    pub(super) fn selects(&self, namespace: &[u8], key: &[u8]) -> bool {
        let Some(name) = key.strip_prefix(namespace) else {
            return false;
        };
        match self {
            Selector::Suffix(suffix) => name.ends_with(suffix.as_bytes()),
            Selector::Prefix(prefix) => name.starts_with(prefix.as_bytes()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(suffix: Option<&str>, prefix: Option<&str>) -> Result<Selector, FieldError> {
        Selector::parse(suffix.map(str::to_string), prefix.map(str::to_string))
    }

    #[test]
    fn exactly_one_non_empty_short_selector_is_accepted() {
        assert_eq!(
            request(Some(":1"), None).unwrap(),
            Selector::Suffix(":1".into())
        );
        assert_eq!(
            request(None, Some("user:")).unwrap(),
            Selector::Prefix("user:".into())
        );
        for bad in [
            request(None, None),
            request(Some("a"), Some("b")),
            request(Some(""), None),
            request(None, Some(&"x".repeat(257))),
        ] {
            assert!(bad.is_err());
        }
    }

    #[test]
    fn the_literal_test_stays_inside_the_namespace() {
        let namespace = b"app:cache:";
        let suffix = Selector::Suffix(":1".into());
        assert!(suffix.selects(namespace, b"app:cache:user:1"));
        assert!(!suffix.selects(namespace, b"app:cache:user:11"));
        assert!(!suffix.selects(namespace, b"app:session:user:1"));
        let star = Selector::Prefix("*".into());
        assert!(!star.selects(namespace, b"app:cache:user:1"));
        assert!(star.selects(namespace, b"app:cache:*weird"));
    }
}
