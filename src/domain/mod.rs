//! Validated types: a value of these types is known to be well-formed.

mod account_token;
mod credentials;
mod job;
mod session;
mod user;

pub use account_token::{AccountToken, TokenPurpose};
pub use credentials::{Email, Password, Username};
pub use job::{Job, Task};
pub use session::{RefreshToken, SessionId};
pub use user::{PublicUser, Role, User, UserId};
