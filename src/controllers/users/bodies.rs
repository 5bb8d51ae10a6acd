//! The bodies and queries of the user routes, and their checks.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::schemas::{PublicUserSchema, RoleSchema, UserSchema};
use crate::domain::{Email, Role, User, UserId, Username};
use crate::error::{AppError, Problems};
use crate::services::users::{self, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, UserPatch, UserQuery};

/// Fields to change; absent ones stay as they are.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(example = json!({"email": "alice@example.org"}))]
#[serde(deny_unknown_fields)]
pub struct UserUpdate {
    #[schema(min_length = 3, max_length = 32, pattern = "^[A-Za-z0-9_.-]{3,32}$")]
    username: Option<String>,
    #[schema(format = Email)]
    email: Option<String>,
    /// Admins only.
    #[schema(value_type = Option<RoleSchema>)]
    role: Option<Role>,
    /// Admins only: a disabled account cannot log in and its sessions end.
    disabled: Option<bool>,
}

impl UserUpdate {
    pub(super) fn parse(self) -> Result<UserPatch, AppError> {
        let mut problems = Problems::default();
        let username = self
            .username
            .map(|name| problems.checked(Username::parse(&name), "username"));
        let email = self
            .email
            .map(|email| problems.checked(Email::parse(&email), "email"));
        let patch = UserPatch {
            username: username.flatten(),
            email: email.flatten(),
            role: self.role,
            disabled: self.disabled,
        };
        problems.or(Some(patch))
    }
}

/// Raw pagination parameters, checked here so errors name the parameter.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageRequest {
    /// 1 to 100, default 20.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100, example = 20)]
    limit: Option<String>,
    /// Return users with ids above this one (the previous page's `next_after_id`).
    #[param(value_type = Option<i64>, minimum = 0, example = 40)]
    after_id: Option<String>,
    /// Only users whose username or e-mail contains this (any case).
    #[param(max_length = 256)]
    q: Option<String>,
    /// Only users with this role.
    #[param(value_type = Option<RoleSchema>)]
    role: Option<String>,
    /// Only disabled (`true`) or enabled (`false`) users.
    #[param(value_type = Option<bool>)]
    disabled: Option<String>,
}

/// Longest search text.
const MAX_QUERY_LENGTH: usize = 256;

impl PageRequest {
    pub(super) fn parse(self) -> Result<UserQuery, AppError> {
        let mut problems = Problems::default();
        let limit = problems.limit(
            self.limit.as_deref(),
            "limit",
            DEFAULT_PAGE_SIZE,
            MAX_PAGE_SIZE,
        );
        let after = problems.whole_number(self.after_id.as_deref(), "after_id");
        let text = self
            .q
            .as_deref()
            .map(str::trim)
            .filter(|text| !text.is_empty());
        if text.is_some_and(|text| text.chars().count() > MAX_QUERY_LENGTH) {
            problems.add(
                "q",
                format!("must be at most {MAX_QUERY_LENGTH} characters"),
            );
        }
        let role = match self.role.as_deref().map(Role::parse) {
            None => None,
            Some(Some(role)) => Some(role),
            Some(None) => {
                problems.add("role", "must be user or admin");
                None
            }
        };
        let disabled = match self.disabled.as_deref() {
            None => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(_) => {
                problems.add("disabled", "must be true or false");
                None
            }
        };
        let query = after.map(|after| UserQuery {
            limit,
            after: after.map(UserId),
            text: text.map(str::to_string),
            role,
            disabled,
        });
        problems.or(query)
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserPage {
    #[schema(value_type = Vec<UserSchema>)]
    items: Vec<User>,
    /// Pass as `after_id` for the next page; null on the last page.
    #[schema(value_type = Option<i64>, required = true)]
    next_after_id: Option<UserId>,
}

impl From<users::UserPage> for UserPage {
    fn from(page: users::UserPage) -> Self {
        Self {
            items: page.items,
            next_after_id: page.next_after_id,
        }
    }
}

/// What `GET /users/{id}` answers: `User` to the user and admins,
/// `PublicUser` to anyone else.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum UserView {
    User(UserSchema),
    PublicUser(PublicUserSchema),
}
