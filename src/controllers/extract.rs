//! Extractors that turn every kind of bad input into the contract's envelope:
//! bodies (JSON, or JSON and forms), the bearer token, the path and query.

mod bearer;
mod body;
mod messages;
mod path;

pub use bearer::{Authenticated, Bearer};
pub use body::{BODY_LIMIT, Json, JsonOrForm, OptionalJsonOrForm};
pub use path::{PathUserId, path_error, query_error};
