//! Redis writes that must follow a committed SQL change.

use std::time::Duration;

use crate::repositories::redis::RedisError;

/// Runs `operation` now; if Redis fails, keeps retrying in the background
/// with growing pauses (about a minute in all), so a committed change is
/// still reflected in Redis once it is back.
pub async fn after_commit<F, Fut>(what: &'static str, operation: F)
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), RedisError>> + Send,
{
    let Err(error) = operation().await else {
        return;
    };
    tracing::warn!(error = %error, "{what} failed after commit; retrying in the background");
    tokio::spawn(async move {
        let mut pause = Duration::from_millis(100);
        for _ in 0..10 {
            tokio::time::sleep(pause).await;
            if operation().await.is_ok() {
                tracing::info!("{what} succeeded on retry");
                return;
            }
            pause = (pause * 2).min(Duration::from_secs(15));
        }
        tracing::error!("{what} still failing; giving up");
    });
}
