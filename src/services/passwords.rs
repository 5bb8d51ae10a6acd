//! argon2id on a fixed set of threads of its own (`pool`). Hashing takes
//! tens of milliseconds of CPU and 19 MiB of memory: on the async workers
//! it would stall every other request, and on tokio's blocking pool every
//! new thread left its 19 MiB behind in an allocator arena (a login storm
//! grew the process past 1 GiB). Each hashing thread allocates its memory
//! once and reuses it, so the cost is bounded: threads × 19 MiB.

mod pool;

use std::sync::Arc;

use anyhow::Context;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use secrecy::{ExposeSecret, SecretString};

use crate::error::AppError;
use pool::HashingPool;
pub use pool::Priority;

/// OWASP's minimum for argon2id: 19 MiB, 2 passes, 1 lane.
const MEMORY_KIB: u32 = 19_456;
const PASSES: u32 = 2;
const LANES: u32 = 1;
const OUTPUT_LEN: usize = 32;

#[derive(Clone)]
pub struct PasswordHasher {
    pool: HashingPool,
    /// A real hash of a random password: unknown users are verified against
    /// it, so a login takes as long whether or not the account exists.
    dummy_hash: Arc<str>,
}

fn params() -> anyhow::Result<Params> {
    Params::new(MEMORY_KIB, PASSES, LANES, Some(OUTPUT_LEN))
        .map_err(|error| anyhow::anyhow!("argon2 parameters: {error}"))
}

/// Hashes into a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`).
fn hash_with(memory: &mut Vec<Block>, password: &[u8]) -> anyhow::Result<String> {
    let params = params()?;
    memory.resize(params.block_count(), Block::default());
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_raw = salt
        .decode_b64(&mut salt_bytes)
        .map_err(|error| anyhow::anyhow!("salt: {error}"))?;
    let mut output = [0u8; OUTPUT_LEN];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into_with_memory(password, salt_raw, &mut output, memory.as_mut_slice())
        .map_err(|error| anyhow::anyhow!("argon2 hashing failed: {error}"))?;
    let output = Output::new(&output).map_err(|error| anyhow::anyhow!("{error}"))?;
    Ok(format!(
        "$argon2id$v=19$m={MEMORY_KIB},t={PASSES},p={LANES}${}${output}",
        salt.as_str()
    ))
}

/// Whether `password` matches the PHC string `hash` (any argon2id
/// parameters), compared in constant time.
fn verify_with(memory: &mut Vec<Block>, password: &[u8], hash: &str) -> anyhow::Result<bool> {
    let parsed = PasswordHash::new(hash)
        .map_err(|error| anyhow::anyhow!("stored password hash is malformed: {error}"))?;
    anyhow::ensure!(
        parsed.algorithm == argon2::ARGON2ID_IDENT,
        "stored password hash is not argon2id"
    );
    let params = Params::try_from(&parsed).map_err(|error| anyhow::anyhow!("{error}"))?;
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        anyhow::bail!("stored password hash has no salt or output");
    };
    let mut salt_bytes = [0u8; 64];
    let salt_raw = salt
        .decode_b64(&mut salt_bytes)
        .map_err(|error| anyhow::anyhow!("salt: {error}"))?;
    memory.resize(params.block_count(), Block::default());
    let mut output = vec![0u8; expected.len()];
    let version = Version::try_from(parsed.version.unwrap_or(0x13))
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    Argon2::new(Algorithm::Argon2id, version, params)
        .hash_password_into_with_memory(password, salt_raw, &mut output, memory.as_mut_slice())
        .map_err(|error| anyhow::anyhow!("argon2 verification failed: {error}"))?;
    let computed = Output::new(&output).map_err(|error| anyhow::anyhow!("{error}"))?;
    Ok(computed == expected)
}

impl PasswordHasher {
    /// Starts the hashing threads (`HashingPool::start` says how many) and
    /// makes the dummy hash that unknown users are checked against.
    pub fn new(threads: usize, queue_capacity: usize) -> anyhow::Result<Self> {
        let pool = HashingPool::start(threads, queue_capacity)?;
        let random = uuid::Uuid::new_v4().to_string();
        let dummy_hash =
            hash_with(&mut Vec::new(), random.as_bytes()).context("building the dummy hash")?;
        Ok(Self {
            pool,
            dummy_hash: dummy_hash.into(),
        })
    }

    pub async fn hash(&self, password: &str, priority: Priority) -> Result<String, AppError> {
        let password = SecretString::from(password);
        self.pool
            .run(priority, move |memory| {
                hash_with(memory, password.expose_secret().as_bytes())
            })
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
            .pool
            .run(Priority::SignIn, move |memory| {
                verify_with(memory, password.expose_secret().as_bytes(), &hash)
            })
            .await?;
        Ok(known && matched)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_own_password_only() {
        let hasher = PasswordHasher::new(1, 8).unwrap();
        let hash = hasher
            .hash("correct horse", Priority::Registration)
            .await
            .unwrap();
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
    async fn hashes_of_the_argon2_crate_verify_too() {
        use argon2::password_hash::PasswordHasher as _;
        let salt = SaltString::generate(&mut OsRng);
        let params = Params::new(8192, 1, 1, None).unwrap();
        let foreign = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(b"correct horse", &salt)
            .unwrap()
            .to_string();
        let hasher = PasswordHasher::new(1, 8).unwrap();
        assert!(
            hasher
                .verify(&"correct horse".into(), Some(&foreign))
                .await
                .unwrap()
        );
        assert!(
            !hasher
                .verify(&"wrong horse".into(), Some(&foreign))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn an_unknown_user_never_verifies() {
        let hasher = PasswordHasher::new(1, 8).unwrap();
        assert!(!hasher.verify(&"anything".into(), None).await.unwrap());
    }
}
