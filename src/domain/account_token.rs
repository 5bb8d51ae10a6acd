//! One-time tokens mailed to people: e-mail verification and password reset.

use sha2::{Digest, Sha256};

/// What a token is good for; each purpose has tokens of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPurpose {
    Verify,
    Reset,
}

impl TokenPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenPurpose::Verify => "verify",
            TokenPurpose::Reset => "reset",
        }
    }
}

/// A token as the person gets it in a link: 64 lower-case hex digits,
/// 256 random bits. Never stored, logged or queued; only its hash is kept.
#[derive(Clone, PartialEq, Eq)]
pub struct AccountToken(String);

const TOKEN_LENGTH: usize = 64;

impl AccountToken {
    /// 256 bits from the OS.
    pub fn new_random() -> anyhow::Result<Self> {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret)
            .map_err(|error| anyhow::anyhow!("no randomness for a token: {error}"))?;
        Ok(Self(
            secret.iter().map(|byte| format!("{byte:02x}")).collect(),
        ))
    }

    /// A token in its one canonical form; `None` for anything else, which
    /// then never reaches the database.
    pub fn parse(text: &str) -> Option<Self> {
        (text.len() == TOKEN_LENGTH
            && text
                .bytes()
                .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte)))
        .then(|| Self(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What is stored of it: SHA-256, in hex. The token is random and long,
    /// so a plain hash cannot be reversed by guessing.
    pub fn hash(&self) -> String {
        Sha256::digest(self.0.as_bytes())
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }
}

/// Never printed: a token in a log line would be a working link.
impl std::fmt::Debug for AccountToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccountToken(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_canonical_and_differ_from_their_hashes() {
        let (a, b) = (
            AccountToken::new_random().unwrap(),
            AccountToken::new_random().unwrap(),
        );
        assert_ne!(a, b);
        assert_eq!(AccountToken::parse(a.as_str()), Some(a.clone()));
        assert_ne!(a.hash(), a.as_str());
        assert_eq!(a.hash().len(), 64);
        assert!(AccountToken::parse(&a.as_str().to_uppercase()).is_none());
        assert!(AccountToken::parse(&a.as_str()[1..]).is_none());
        assert_eq!(format!("{a:?}"), "AccountToken(..)");
    }
}
