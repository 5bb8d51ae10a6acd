use serde::{Deserialize, Serialize};

/// A unit of background work. `id` stays the same across retries and
/// redeliveries, so a job can be recognised as already done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub id: String,
    /// Failed attempts so far.
    #[serde(default)]
    pub attempt: u32,
    #[serde(flatten)]
    pub task: Task,
}

/// What a job does. Jobs travel through SQL (the outbox) and Redis (the
/// queue), so they never carry a token: the worker mints the token when it
/// sends the mail, and only the token's hash is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Task {
    /// The welcome mail, with a verification link while the address is
    /// unverified. (Jobs queued by earlier versions have no request time:
    /// they send the welcome without a link.)
    WelcomeEmail {
        to: String,
        username: String,
        #[serde(default)]
        requested_at_ms: i64,
    },
    /// A verification link for `to`, if an account still has it unverified
    /// when the mail goes out.
    VerifyEmail { to: String, requested_at_ms: i64 },
    /// Tells the old address that the account's address changed.
    EmailChangedNotice { to: String, username: String },
    /// A reset link to the account with this address, if there is one and
    /// it is not disabled; otherwise nothing is sent.
    PasswordReset { to: String, requested_at_ms: i64 },
}

impl Job {
    pub fn new(task: Task) -> Self {
        Self {
            id: uuid::Uuid::new_v4().simple().to_string(),
            attempt: 0,
            task,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self.task {
            Task::WelcomeEmail { .. } => "welcome_email",
            Task::VerifyEmail { .. } => "verify_email",
            Task::EmailChangedNotice { .. } => "email_changed_notice",
            Task::PasswordReset { .. } => "password_reset",
        }
    }
}

/// How many jobs are in each state of the queue, and its totals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueCounts {
    /// In the stream, not yet taken by a worker.
    pub pending: u64,
    /// Taken by a worker, not yet acknowledged.
    pub in_flight: u64,
    /// Failed, waiting for their next attempt.
    pub delayed: u64,
    pub dead: u64,
    /// Total retries scheduled and jobs delivered, since the queue began.
    pub retried: u64,
    pub delivered: u64,
}
