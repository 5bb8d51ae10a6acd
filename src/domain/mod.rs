//! Validated types: a value of these types is known to be well-formed.

mod account_token;
mod audit;
mod credentials;
mod job;
mod rate_limit;
mod session;
mod user;

pub use account_token::{AccountToken, TokenPurpose};
pub use audit::AuditEvent;
pub use credentials::{Email, Password, Username};
pub use job::{Job, QueueCounts, Task};
pub use rate_limit::RateDecision;
pub use session::{RefreshToken, SessionId, SessionRecord};
pub use user::{PublicUser, Role, User, UserId};
