//! Concurrent loads of one key in this process share a single load: when
//! many requests miss the same cache entry at once, the database is asked
//! once, and the others wait (briefly) for that answer.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::watch;

use crate::error::AppError;

type Flight = Arc<dyn Any + Send + Sync>;

#[derive(Default)]
pub struct SingleFlight {
    flights: Mutex<HashMap<String, Flight>>,
}

/// Followers wait at most this long for the leader, then load themselves.
const FOLLOWER_WAIT: Duration = Duration::from_secs(2);

enum Role<T> {
    Leader(watch::Sender<Option<T>>, Flight),
    Follower(watch::Receiver<Option<T>>),
}

/// Ends the flight when the leader finishes or is cancelled; followers of
/// a cancelled or failed leader see the sender gone and load themselves.
struct Landing<'a> {
    flights: &'a Mutex<HashMap<String, Flight>>,
    key: &'a str,
    flight: Flight,
}

impl Drop for Landing<'_> {
    fn drop(&mut self) {
        let mut flights = self.flights.lock().unwrap_or_else(PoisonError::into_inner);
        if flights
            .get(self.key)
            .is_some_and(|current| Arc::ptr_eq(current, &self.flight))
        {
            flights.remove(self.key);
        }
    }
}

impl SingleFlight {
    /// Runs `load`, or waits for the load of `key` already running and takes
    /// its value if `acceptable` (else loads after all).
    pub async fn run<T>(
        &self,
        key: &str,
        load: impl AsyncFnOnce() -> Result<T, AppError>,
        acceptable: impl Fn(&T) -> bool,
    ) -> Result<T, AppError>
    where
        T: Clone + Send + Sync + 'static,
    {
        let role = {
            let mut flights = self.flights.lock().unwrap_or_else(PoisonError::into_inner);
            let joined = flights
                .get(key)
                .and_then(|flight| flight.downcast_ref::<watch::Receiver<Option<T>>>())
                .cloned();
            match joined {
                Some(receiver) => Role::Follower(receiver),
                None => {
                    let (sender, receiver) = watch::channel(None);
                    let flight: Flight = Arc::new(receiver);
                    flights.insert(key.to_string(), flight.clone());
                    Role::Leader(sender, flight)
                }
            }
        };
        match role {
            Role::Leader(sender, flight) => {
                let _landing = Landing {
                    flights: &self.flights,
                    key,
                    flight,
                };
                let result = load().await;
                if let Ok(value) = &result {
                    sender.send_replace(Some(value.clone()));
                }
                result
            }
            Role::Follower(mut receiver) => {
                let shared =
                    tokio::time::timeout(FOLLOWER_WAIT, receiver.wait_for(Option::is_some))
                        .await
                        .ok()
                        .and_then(Result::ok)
                        .and_then(|value| value.clone())
                        .filter(|value| acceptable(value));
                match shared {
                    Some(value) => Ok(value),
                    None => load().await,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn concurrent_loads_of_one_key_run_once() {
        let flights = Arc::new(SingleFlight::default());
        let loads = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let (flights, loads) = (flights.clone(), loads.clone());
                tokio::spawn(async move {
                    flights
                        .run(
                            "user:1",
                            async || {
                                loads.fetch_add(1, Ordering::SeqCst);
                                tokio::time::sleep(Duration::from_millis(50)).await;
                                Ok::<_, AppError>(7)
                            },
                            |_| true,
                        )
                        .await
                })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap().unwrap(), 7);
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        assert!(
            flights.flights.lock().unwrap().is_empty(),
            "the flight landed"
        );
    }

    #[tokio::test]
    async fn followers_of_a_failed_load_load_themselves() {
        let flights = Arc::new(SingleFlight::default());
        let leader = {
            let flights = flights.clone();
            tokio::spawn(async move {
                flights
                    .run(
                        "k",
                        async || {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            Err::<i32, _>(AppError::NotFound("user"))
                        },
                        |_| true,
                    )
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        let follower = flights
            .run("k", async || Ok::<_, AppError>(3), |_| true)
            .await;
        assert!(leader.await.unwrap().is_err());
        assert_eq!(follower.unwrap(), 3);
    }
}
