//! Refresh tokens: random when a session starts, each next one derived
//! from the one it replaces with a keyed hash (HMAC-SHA256). Derivation
//! makes rotation idempotent: two browser tabs refreshing with the same
//! token at once both get the same next token, so neither is logged out,
//! while nobody without the server's key can compute it. Only SHA-256
//! hashes of tokens are stored.

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::domain::{RefreshToken, SessionId};

pub struct RefreshSecrets {
    key: Vec<u8>,
}

impl RefreshSecrets {
    /// The derivation key comes from the JWT secret, under a label of its
    /// own, so one configured secret serves both without reusing a key.
    pub fn new(secret: &SecretString) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"user-api refresh-token derivation v1\0");
        hasher.update(secret.expose_secret().as_bytes());
        Self {
            key: hasher.finalize().to_vec(),
        }
    }

    /// A fresh token for a new session: 256 bits from the OS.
    pub fn first(&self, session: &SessionId) -> anyhow::Result<RefreshToken> {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret)
            .map_err(|error| anyhow::anyhow!("no randomness for a refresh token: {error}"))?;
        Ok(RefreshToken::new(session, &secret))
    }

    /// The token that replaces `token` (always the same one for it).
    pub fn next(&self, token: &RefreshToken) -> anyhow::Result<RefreshToken> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key)?;
        mac.update(token.as_str().as_bytes());
        let secret: [u8; 32] = mac.finalize().into_bytes().into();
        Ok(RefreshToken::new(token.session(), &secret))
    }

    /// What is stored of a token.
    pub fn hash(token: &RefreshToken) -> String {
        let digest = Sha256::digest(token.as_str().as_bytes());
        digest.iter().map(|byte| format!("{byte:02x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(secret: &str) -> RefreshSecrets {
        RefreshSecrets::new(&secret.to_string().into())
    }

    #[test]
    fn the_next_token_is_the_same_for_the_same_token_and_key() {
        let session = SessionId::new_random();
        let one = secrets("one-secret-of-at-least-32-bytes-long");
        let first = one.first(&session).unwrap();
        assert_eq!(one.next(&first).unwrap(), one.next(&first).unwrap());
        assert_ne!(one.next(&first).unwrap(), first);
        assert_eq!(one.next(&first).unwrap().session(), &session);
        let other = secrets("another-secret-of-at-least-32-bytes");
        assert_ne!(other.next(&first).unwrap(), one.next(&first).unwrap());
    }

    #[test]
    fn first_tokens_are_random_and_stored_hashes_differ_from_them() {
        let session = SessionId::new_random();
        let one = secrets("one-secret-of-at-least-32-bytes-long");
        let (a, b) = (one.first(&session).unwrap(), one.first(&session).unwrap());
        assert_ne!(a, b);
        let hash = RefreshSecrets::hash(&a);
        assert_eq!(hash.len(), 64);
        assert!(!a.as_str().contains(&hash));
    }
}
