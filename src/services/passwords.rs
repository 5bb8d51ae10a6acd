//! argon2id hashing on a bounded set of blocking threads: hashing takes tens
//! of milliseconds of CPU, which on an async worker would stall every other
//! request on it.

use std::sync::Arc;

use anyhow::Context;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

use crate::error::AppError;

#[derive(Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    /// A real hash of a random password: unknown users are verified against
    /// it, so a login takes as long whether or not the account exists.
    dummy_hash: Arc<str>,
}

fn argon2() -> Argon2<'static> {
    // OWASP's minimum for argon2id: 19 MiB, 2 passes, 1 lane.
    let params = Params::new(19_456, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn hash_blocking(password: &[u8]) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(argon2()
        .hash_password(password, &salt)
        .map_err(|error| anyhow::anyhow!("argon2 hashing failed: {error}"))?
        .to_string())
}

fn verify_blocking(password: &[u8], hash: &str) -> anyhow::Result<bool> {
    let parsed = PasswordHash::new(hash)
        .map_err(|error| anyhow::anyhow!("stored password hash is malformed: {error}"))?;
    Ok(argon2().verify_password(password, &parsed).is_ok())
}

impl PasswordHasher {
    /// `concurrency` hashes may run at once (0 = one per CPU core).
    pub fn new(concurrency: usize) -> anyhow::Result<Self> {
        let concurrency = match concurrency {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        let random = uuid::Uuid::new_v4().to_string();
        let dummy_hash = hash_blocking(random.as_bytes()).context("building the dummy hash")?;
        Ok(Self {
            permits: Arc::new(Semaphore::new(concurrency)),
            dummy_hash: dummy_hash.into(),
        })
    }

    pub async fn hash(&self, password: &str) -> Result<String, AppError> {
        let password = SecretString::from(password);
        self.run(move || hash_blocking(password.expose_secret().as_bytes()))
            .await
    }

    /// Whether `password` matches `hash`; with no hash (unknown user) it
    /// checks against the dummy hash and answers false.
    pub async fn verify(
        &self,
        password: &SecretString,
        hash: Option<&str>,
    ) -> Result<bool, AppError> {
        let known = hash.is_some();
        let hash: Arc<str> = hash.map_or_else(|| self.dummy_hash.clone(), Arc::from);
        let password = password.clone();
        let matched = self
            .run(move || verify_blocking(password.expose_secret().as_bytes(), &hash))
            .await?;
        Ok(known && matched)
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
    ) -> Result<T, AppError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|error| AppError::Internal(error.into()))?;
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || span.in_scope(work))
            .await
            .map_err(|error| AppError::Internal(error.into()))?
            .map_err(AppError::Internal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_own_password_only() {
        let hasher = PasswordHasher::new(1).unwrap();
        let hash = hasher.hash("correct horse").await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(
            hasher
                .verify(&"correct horse".into(), Some(&hash))
                .await
                .unwrap()
        );
        assert!(
            !hasher
                .verify(&"wrong horse".into(), Some(&hash))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn an_unknown_user_never_verifies() {
        let hasher = PasswordHasher::new(1).unwrap();
        assert!(!hasher.verify(&"anything".into(), None).await.unwrap());
    }
}
