//! argon2id on a fixed set of threads of its own. Hashing takes tens of
//! milliseconds of CPU and 19 MiB of memory: on the async workers it would
//! stall every other request, and on tokio's blocking pool every new thread
//! left its 19 MiB behind in an allocator arena (a login storm grew the
//! process past 1 GiB). Each hashing thread allocates its memory once and
//! reuses it, so the cost is bounded: threads × 19 MiB.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use anyhow::Context;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::oneshot;

use crate::error::AppError;

/// OWASP's minimum for argon2id: 19 MiB, 2 passes, 1 lane.
const MEMORY_KIB: u32 = 19_456;
const PASSES: u32 = 2;
const LANES: u32 = 1;
const OUTPUT_LEN: usize = 32;

type Work = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

/// Which queue a hash waits in. A hashing thread always takes sign-in work
/// first, so a flood of registrations (each hashes a password, even one
/// about to be refused as taken) delays a login by at most the hashes
/// already running, never by the queue in front of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// Logins and password checks of a signed-in user.
    SignIn,
    /// New accounts.
    Registration,
}

#[derive(Default)]
struct Queues {
    sign_in: VecDeque<Work>,
    registration: VecDeque<Work>,
    closed: bool,
}

/// What the hashing threads share with the hasher.
struct Shared {
    queues: Mutex<Queues>,
    work_ready: Condvar,
    /// Work that may wait in each queue; more is refused (503), so a flood
    /// cannot queue unbounded work and memory.
    capacity: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queues> {
        self.queues.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The next work, sign-ins first; `None` once the hasher is gone.
    fn next(&self) -> Option<Work> {
        let mut queues = self.lock();
        loop {
            if let Some(work) = queues.sign_in.pop_front() {
                return Some(work);
            }
            if let Some(work) = queues.registration.pop_front() {
                return Some(work);
            }
            if queues.closed {
                return None;
            }
            queues = self
                .work_ready
                .wait(queues)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// Stops the hashing threads when the last clone of the hasher goes.
struct Threads(Arc<Shared>);

impl Drop for Threads {
    fn drop(&mut self) {
        self.0.lock().closed = true;
        self.0.work_ready.notify_all();
    }
}

#[derive(Clone)]
pub struct PasswordHasher {
    shared: Arc<Shared>,
    _threads: Arc<Threads>,
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
    /// Starts `threads` hashing threads (0 = half the CPU cores, at least
    /// one: a login storm must leave the other half to everything else);
    /// up to `queue_capacity` hashes may wait in each queue.
    pub fn new(threads: usize, queue_capacity: usize) -> anyhow::Result<Self> {
        let threads = match threads {
            0 => (std::thread::available_parallelism().map_or(1, usize::from) / 2).max(1),
            n => n,
        };
        let shared = Arc::new(Shared {
            queues: Mutex::default(),
            work_ready: Condvar::new(),
            capacity: queue_capacity.max(1),
        });
        let stopper = Arc::new(Threads(shared.clone()));
        for n in 0..threads {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || {
                    let mut memory = Vec::new();
                    while let Some(work) = shared.next() {
                        work(&mut memory);
                    }
                })
                .context("starting a hashing thread")?;
        }
        let random = uuid::Uuid::new_v4().to_string();
        let dummy_hash =
            hash_with(&mut Vec::new(), random.as_bytes()).context("building the dummy hash")?;
        Ok(Self {
            shared,
            _threads: stopper,
            dummy_hash: dummy_hash.into(),
        })
    }

    pub async fn hash(&self, password: &str, priority: Priority) -> Result<String, AppError> {
        let password = SecretString::from(password);
        self.run(priority, move |memory| {
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
            .run(Priority::SignIn, move |memory| {
                verify_with(memory, password.expose_secret().as_bytes(), &hash)
            })
            .await?;
        Ok(known && matched)
    }

    /// Queues the work, or refuses it at once (503 `unavailable`) when
    /// its queue is full.
    async fn run<T: Send + 'static>(
        &self,
        priority: Priority,
        work: impl FnOnce(&mut Vec<Block>) -> anyhow::Result<T> + Send + 'static,
    ) -> Result<T, AppError> {
        let (reply, answer) = oneshot::channel();
        let span = tracing::Span::current();
        let job: Work = Box::new(move |memory| {
            let _ = reply.send(span.in_scope(|| work(memory)));
        });
        {
            let mut queues = self.shared.lock();
            let queue = match priority {
                Priority::SignIn => &mut queues.sign_in,
                Priority::Registration => &mut queues.registration,
            };
            if queue.len() >= self.shared.capacity {
                tracing::info!(?priority, "password hashing queue full; answering 503");
                return Err(AppError::Overloaded);
            }
            queue.push_back(job);
        }
        self.shared.work_ready.notify_one();
        answer
            .await
            .map_err(|_| AppError::Internal(anyhow::anyhow!("a hashing thread dropped its work")))?
            .map_err(AppError::Internal)
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
    async fn a_full_queue_refuses_at_once_and_sign_ins_go_first() {
        let hasher = PasswordHasher::new(1, 2).unwrap();
        let (started, start) = oneshot::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        // Hold the only thread, then fill the registration queue.
        let blocker = {
            let hasher = hasher.clone();
            tokio::spawn(async move {
                hasher
                    .run(Priority::Registration, move |_| {
                        started.send(()).unwrap();
                        released.recv().unwrap();
                        Ok(())
                    })
                    .await
            })
        };
        start.await.unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let queued = |priority, name: &'static str| {
            let (hasher, order) = (hasher.clone(), order.clone());
            tokio::spawn(async move {
                hasher
                    .run(priority, move |_| {
                        order.lock().unwrap().push(name);
                        Ok(())
                    })
                    .await
            })
        };
        let registrations = [
            queued(Priority::Registration, "registration"),
            queued(Priority::Registration, "registration"),
        ];
        while hasher.shared.lock().registration.len() < 2 {
            tokio::task::yield_now().await;
        }
        let refused = hasher.run(Priority::Registration, |_| Ok(())).await;
        assert!(
            matches!(refused, Err(AppError::Overloaded)),
            "the third waits nowhere"
        );
        let sign_in = queued(Priority::SignIn, "sign-in");
        while hasher.shared.lock().sign_in.is_empty() {
            tokio::task::yield_now().await;
        }
        release.send(()).unwrap();
        blocker.await.unwrap().unwrap();
        sign_in.await.unwrap().unwrap();
        for registration in registrations {
            registration.await.unwrap().unwrap();
        }
        assert_eq!(
            *order.lock().unwrap(),
            ["sign-in", "registration", "registration"],
            "the sign-in queued last ran first"
        );
    }

    #[tokio::test]
    async fn an_unknown_user_never_verifies() {
        let hasher = PasswordHasher::new(1, 8).unwrap();
        assert!(!hasher.verify(&"anything".into(), None).await.unwrap());
    }
}
