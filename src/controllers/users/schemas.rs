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

    /// (property, kind) pairs, sorted: a kind is `integer`, `boolean`,
    /// `string` or `date-time`.
    type Shape = Vec<(String, &'static str)>;

    /// The properties a schema declares, and the kind of each (a `$ref`
    /// is to `Role`, a string, whose values are checked below).
    fn declared(schema: impl serde::Serialize) -> Shape {
        let schema = serde_json::to_value(schema).expect("a schema serialises");
        let properties = schema["properties"].as_object().expect("an object schema");
        let mut shape: Shape = properties
            .iter()
            .map(|(name, property)| {
                let kind = match (property["type"].as_str(), property["format"].as_str()) {
                    (Some("integer"), _) => "integer",
                    (Some("boolean"), _) => "boolean",
                    (Some("string"), Some("date-time")) => "date-time",
                    (Some("string"), _) => "string",
                    (None, _) if property.get("$ref").is_some() => "string",
                    _ => panic!("{name}: unexpected schema {property}"),
                };
                (name.clone(), kind)
            })
            .collect();
        shape.sort();
        shape
    }

    /// The fields a value is sent with, and the kind of each.
    fn sent(value: impl serde::Serialize) -> Shape {
        let value = serde_json::to_value(value).expect("the value serialises");
        let mut shape: Shape = value
            .as_object()
            .expect("an object")
            .iter()
            .map(|(name, field)| {
                let kind = match field {
                    Value::Number(number) if number.is_i64() => "integer",
                    Value::Bool(_) => "boolean",
                    Value::String(text) => match OffsetDateTime::parse(
                        text,
                        &time::format_description::well_known::Rfc3339,
                    ) {
                        Ok(_) => "date-time",
                        Err(_) => "string",
                    },
                    _ => panic!("{name}: unexpected value {field}"),
                };
                (name.clone(), kind)
            })
            .collect();
        shape.sort();
        shape
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
    fn the_user_schemas_name_exactly_the_fields_a_user_is_sent_with_and_their_kinds() {
        assert_eq!(declared(UserSchema::schema()), sent(user()));
        assert_eq!(
            declared(PublicUserSchema::schema()),
            sent(PublicUser::from(&user()))
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
