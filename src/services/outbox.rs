//! The signal between the services that commit jobs to the outbox and the
//! relay that hands them to the queue.

use std::sync::Arc;

use tokio::sync::Notify;

/// Wakes the relay as soon as a job was committed to the outbox.
#[derive(Clone, Default)]
pub struct OutboxSignal(Arc<Notify>);

impl OutboxSignal {
    pub fn notify(&self) {
        self.0.notify_one();
    }

    /// Waits until `notify` was called (at once if it was since the last wait).
    pub async fn notified(&self) {
        self.0.notified().await;
    }
}
