//! What a cached value is stored and sent as: its JSON and a digest of it.

use serde::Serialize;
use sha2::{Digest, Sha256};

/// A value as sent to clients: its JSON and a digest of it, which is
/// stable across instances and restarts (the ETag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Representation {
    pub body: Vec<u8>,
    pub digest: String,
}

impl Representation {
    pub fn of<T: Serialize>(value: &T) -> Result<Self, serde_json::Error> {
        let body = serde_json::to_vec(value)?;
        Ok(Self {
            digest: digest_of(&body),
            body,
        })
    }

    /// Two views of one value in one cache entry, read in one round trip:
    /// the bodies joined by a newline (which compact JSON never holds
    /// outside a string, where it is escaped), the digests side by side.
    pub fn pair<A: Serialize, B: Serialize>(
        first: &A,
        second: &B,
    ) -> Result<Self, serde_json::Error> {
        let (first, second) = (Self::of(first)?, Self::of(second)?);
        let mut body = first.body;
        body.push(b'\n');
        body.extend_from_slice(&second.body);
        Ok(Self {
            body,
            digest: first.digest + &second.digest,
        })
    }

    /// The first (0) or second (1) view of a `pair`; `None` if this is not one.
    pub fn part(mut self, index: usize) -> Option<Self> {
        let split = self.body.iter().position(|&byte| byte == b'\n')?;
        if self.digest.len() != 2 * DIGEST_HEX_LENGTH {
            return None;
        }
        let digest = if index == 0 {
            self.digest[..DIGEST_HEX_LENGTH].to_string()
        } else {
            self.digest[DIGEST_HEX_LENGTH..].to_string()
        };
        let body = if index == 0 {
            self.body.truncate(split);
            self.body
        } else {
            self.body.split_off(split + 1)
        };
        Some(Self { body, digest })
    }
}

/// Hex digits of a digest.
pub(super) const DIGEST_HEX_LENGTH: usize = 32;

/// The first 128 bits of the SHA-256 of `bytes`, in hex.
pub fn digest_of(bytes: &[u8]) -> String {
    use std::fmt::Write;
    Sha256::digest(bytes)[..16]
        .iter()
        .fold(String::with_capacity(32), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}
