//! The request bodies of the account routes.

use secrecy::SecretString;
use serde::Deserialize;
use utoipa::ToSchema;

// Fields are optional in Rust so a missing one is reported by name with
// the other problems, not as a parse error; the API documents them as required.

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"username": "alice", "email": "alice@example.com", "password": "correct horse"}))]
pub struct Registration {
    /// 3–32 of `A-Z a-z 0-9 _ . -`; unique, whatever the case.
    #[schema(required = true, value_type = String, min_length = 3, max_length = 32, pattern = "^[A-Za-z0-9_.-]{3,32}$")]
    pub(super) username: Option<String>,
    /// Stored lower-case; unique.
    #[schema(required = true, value_type = String, format = Email)]
    pub(super) email: Option<String>,
    #[schema(required = true, value_type = String, format = Password, min_length = 8, max_length = 128)]
    pub(super) password: Option<SecretString>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"username": "alice", "password": "correct horse"}))]
pub struct LoginAttempt {
    /// The username, or the e-mail address.
    #[schema(required = true, value_type = String)]
    pub(super) username: Option<String>,
    #[schema(required = true, value_type = String, format = Password)]
    pub(super) password: Option<SecretString>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"current_password": "correct horse", "new_password": "battery staple"}))]
pub struct PasswordChange {
    #[schema(required = true, value_type = String, format = Password)]
    pub(super) current_password: Option<SecretString>,
    #[schema(required = true, value_type = String, format = Password, min_length = 8, max_length = 128)]
    pub(super) new_password: Option<SecretString>,
}

// No `Debug`: it holds a token, which must not reach a log line.
#[derive(Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"refresh_token": "q8Zp3m1XfK0c9VtR2yL7wB4nJ6hD5sA1eG8uI0oP3kM"}))]
pub struct RefreshRequest {
    /// Optional when the refresh cookie is on and sent.
    pub refresh_token: Option<String>,
}
