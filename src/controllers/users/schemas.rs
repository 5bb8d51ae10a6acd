//! The OpenAPI schemas of the user as the API sends it. The domain types
//! serialise themselves (the cache stores those bytes and serves them as
//! they are), so these types are never built: they describe that form, and
//! the tests below fail when the two drift apart.

use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

/// The user as the user itself and admins see it; any other caller gets a
/// `PublicUser`. The password hash is not part of it, so it can never be
/// serialised by accident.
// Serialize only so `UserView` (untagged) can name it.
#[derive(Serialize, ToSchema)]
#[schema(as = User, example = json!({"id": 42, "username": "alice", "email": "alice@example.com",
    "email_verified": true, "role": "user", "disabled": false,
    "created_at": "2026-11-30T09:15:00Z", "updated_at": "2026-11-30T09:15:00Z"}))]
#[allow(dead_code)]
pub struct UserSchema {
    id: i64,
    username: String,
    #[schema(format = Email)]
    email: String,
    /// Whether the address was confirmed through the link mailed to it.
    email_verified: bool,
    role: RoleSchema,
    /// A disabled account cannot log in; an admin can enable it again.
    disabled: bool,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

/// What any signed-in user may see of another: no e-mail, role or state.
#[derive(Serialize, ToSchema)]
#[schema(as = PublicUser)]
#[allow(dead_code)]
pub struct PublicUserSchema {
    id: i64,
    username: String,
    created_at: OffsetDateTime,
}

#[derive(Serialize, ToSchema)]
#[schema(as = Role)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum RoleSchema {
    User,
    Admin,
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};
    use utoipa::PartialSchema;

    use super::*;
    use crate::domain::{PublicUser, Role, User, UserId};

    fn sorted(mut names: Vec<String>) -> Vec<String> {
        names.sort();
        names
    }

    /// The property names a schema declares.
    fn properties(schema: impl serde::Serialize) -> Vec<String> {
        let schema = serde_json::to_value(schema).expect("a schema serialises");
        let properties = schema["properties"].as_object().expect("an object schema");
        sorted(properties.keys().cloned().collect())
    }

    /// The field names a value serialises with.
    fn fields(value: impl serde::Serialize) -> Vec<String> {
        let value = serde_json::to_value(value).expect("the value serialises");
        sorted(
            value
                .as_object()
                .expect("an object")
                .keys()
                .cloned()
                .collect(),
        )
    }

    fn user() -> User {
        User {
            id: UserId(7),
            username: "alice".into(),
            email: "alice@example.com".into(),
            email_verified: false,
            role: Role::Admin,
            disabled: false,
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
            version: 3,
        }
    }

    #[test]
    fn the_user_schema_names_exactly_the_fields_a_user_is_sent_with() {
        assert_eq!(properties(UserSchema::schema()), fields(user()));
        assert_eq!(
            properties(PublicUserSchema::schema()),
            fields(PublicUser::from(&user()))
        );
    }

    #[test]
    fn the_role_schema_lists_exactly_the_roles_as_they_are_sent() {
        let schema = serde_json::to_value(RoleSchema::schema()).expect("a schema");
        let sent: Vec<Value> = [Role::User, Role::Admin]
            .into_iter()
            .map(|role| json!(role))
            .collect();
        assert_eq!(schema["enum"], Value::Array(sent));
    }
}
