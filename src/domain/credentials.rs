use secrecy::{ExposeSecret, SecretString};

/// 3–32 characters of `[A-Za-z0-9_.-]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub const MIN_LENGTH: usize = 3;
    pub const MAX_LENGTH: usize = 32;

    pub fn parse(value: &str) -> Result<Self, String> {
        let length = value.chars().count();
        if !(Self::MIN_LENGTH..=Self::MAX_LENGTH).contains(&length) {
            return Err(format!(
                "must be {} to {} characters long",
                Self::MIN_LENGTH,
                Self::MAX_LENGTH
            ));
        }
        if !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        {
            return Err("may contain only letters, digits, '_', '.' and '-'".into());
        }
        Ok(Self(value.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A plausible e-mail address, stored lower-case, with its domain in the
/// ASCII form of IDNA (`bücher.example` → `xn--bcher-kva.example`): one
/// mailbox, written either way, is one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub const MAX_LENGTH: usize = 254;

    pub fn parse(value: &str) -> Result<Self, String> {
        const INVALID: &str = "is not a valid e-mail address";
        let too_long = || format!("must be at most {} characters long", Self::MAX_LENGTH);
        // Checked again once the domain is in its ASCII form; this only
        // spares IDNA from long input.
        if value.len() > 1024 {
            return Err(too_long());
        }
        let value = value.trim().to_lowercase();
        let Some((local, domain)) = value.rsplit_once('@') else {
            return Err(INVALID.into());
        };
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| c.is_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c));
        let domain = idna::domain_to_ascii_strict(domain).map_err(|_| INVALID.to_string())?;
        let domain_ok = domain.contains('.')
            && domain.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if !(local_ok && domain_ok) {
            return Err(INVALID.into());
        }
        let address = format!("{local}@{domain}");
        if address.len() > Self::MAX_LENGTH {
            return Err(too_long());
        }
        Ok(Self(address))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A new password: 8–128 characters. Kept secret so it never reaches a log.
#[derive(Debug)]
pub struct Password(SecretString);

impl Password {
    pub const MIN_LENGTH: usize = 8;
    pub const MAX_LENGTH: usize = 128;

    pub fn parse(value: SecretString) -> Result<Self, String> {
        let length = value.expose_secret().chars().count();
        if !(Self::MIN_LENGTH..=Self::MAX_LENGTH).contains(&length) {
            return Err(format!(
                "must be {} to {} characters long",
                Self::MIN_LENGTH,
                Self::MAX_LENGTH
            ));
        }
        Ok(Self(value))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_accept_only_the_allowed_alphabet_and_length() {
        assert!(Username::parse("al.ice_-9").is_ok());
        assert!(Username::parse("ab").is_err());
        assert!(Username::parse(&"a".repeat(33)).is_err());
        assert!(Username::parse("al ice").is_err());
        assert!(Username::parse("alïce").is_err());
    }

    #[test]
    fn emails_are_checked_and_lower_cased() {
        assert_eq!(
            Email::parse("Alice@Example.COM").unwrap().as_str(),
            "alice@example.com"
        );
        for bad in [
            "alice",
            "alice@",
            "@example.com",
            "a@b",
            "a b@c.d",
            "a@-b.c",
            "a..b@c.d",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn an_internationalised_domain_is_one_address_in_either_form() {
        let unicode = Email::parse("User@Bücher.Example").unwrap();
        let ascii = Email::parse("user@xn--bcher-kva.example").unwrap();
        assert_eq!(unicode, ascii);
        assert_eq!(ascii.as_str(), "user@xn--bcher-kva.example");
        assert!(Email::parse("user@bü cher.example").is_err());
    }

    #[test]
    fn passwords_must_be_8_to_128_characters() {
        assert!(Password::parse("1234567".into()).is_err());
        assert!(Password::parse("12345678".into()).is_ok());
        assert!(Password::parse("é".repeat(128).into()).is_ok());
        assert!(Password::parse("x".repeat(129).into()).is_err());
    }

    proptest::proptest! {
        #[test]
        fn parsers_never_panic_and_accepted_values_keep_their_promises(text in "\\PC{0,80}") {
            if let Ok(username) = Username::parse(&text) {
                proptest::prop_assert!((3..=32).contains(&username.as_str().len()));
            }
            if let Ok(email) = Email::parse(&text) {
                proptest::prop_assert!(email.as_str().contains('@'));
                proptest::prop_assert_eq!(email.as_str().to_lowercase(), email.as_str());
            }
            let _ = Password::parse(text.into());
        }
    }
}
