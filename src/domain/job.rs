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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Task {
    WelcomeEmail { to: String, username: String },
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
        }
    }
}
