//! The hashing threads and the two queues they take work from, sign-ins
//! first. Each thread keeps one argon2 memory and reuses it for every hash.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use anyhow::Context;
use argon2::Block;
use tokio::sync::oneshot;

use crate::error::AppError;

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

/// What the hashing threads share with the pool.
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

    /// The next work, sign-ins first; `None` once the pool is gone.
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

/// Stops the hashing threads when the last clone of the pool goes.
struct Threads(Arc<Shared>);

impl Drop for Threads {
    fn drop(&mut self) {
        self.0.lock().closed = true;
        self.0.work_ready.notify_all();
    }
}

#[derive(Clone)]
pub(super) struct HashingPool {
    shared: Arc<Shared>,
    _threads: Arc<Threads>,
}

impl HashingPool {
    /// Starts `threads` hashing threads (0 = half the CPU cores, at least
    /// one: a login storm must leave the other half to everything else);
    /// up to `queue_capacity` hashes may wait in each queue.
    pub(super) fn start(threads: usize, queue_capacity: usize) -> anyhow::Result<Self> {
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
        Ok(Self {
            shared,
            _threads: stopper,
        })
    }

    /// Queues the work, or refuses it at once (503 `unavailable`) when
    /// its queue is full.
    pub(super) async fn run<T: Send + 'static>(
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
    async fn a_full_queue_refuses_at_once_and_sign_ins_go_first() {
        let pool = HashingPool::start(1, 2).unwrap();
        let (started, start) = oneshot::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        // Hold the only thread, then fill the registration queue.
        let blocker = {
            let pool = pool.clone();
            tokio::spawn(async move {
                pool.run(Priority::Registration, move |_| {
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
            let (pool, order) = (pool.clone(), order.clone());
            tokio::spawn(async move {
                pool.run(priority, move |_| {
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
        while pool.shared.lock().registration.len() < 2 {
            tokio::task::yield_now().await;
        }
        let refused = pool.run(Priority::Registration, |_| Ok(())).await;
        assert!(
            matches!(refused, Err(AppError::Overloaded)),
            "the third waits nowhere"
        );
        let sign_in = queued(Priority::SignIn, "sign-in");
        while pool.shared.lock().sign_in.is_empty() {
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
}
