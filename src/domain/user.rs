use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(pub i64);

impl UserId {
    /// An id as written in a path: its canonical decimal form only, so one
    /// user has one URL (`02`, `+2` and `2 ` are not user 2).
    pub fn parse(text: &str) -> Result<Self, String> {
        const MESSAGE: &str = "must be a user id: digits only, without sign or leading zeros";
        let canonical = !text.is_empty()
            && text.bytes().all(|b| b.is_ascii_digit())
            && (text == "0" || !text.starts_with('0'));
        if !canonical {
            return Err(MESSAGE.into());
        }
        text.parse().map(Self).map_err(|_| MESSAGE.into())
    }
}

impl std::fmt::Display for UserId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }

    pub fn parse(value: &str) -> Option<Role> {
        match value {
            "user" => Some(Role::User),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

// The cache holds this and its `PublicUser` view together, in one entry
// (`Representation::pair` in services/cache/representation.rs).
/// The user as the user itself and admins see it; any other caller gets a
/// `PublicUser`. The password hash is not part of it, so it can never be
/// serialised by accident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub username: String,
    pub email: String,
    /// Whether the address was confirmed through the link mailed to it.
    pub email_verified: bool,
    pub role: Role,
    /// A disabled account cannot log in; an admin can enable it again.
    pub disabled: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Row version, raised by every update. Orders cache writes; not shown.
    #[serde(skip)]
    pub version: i64,
}

/// What any signed-in user may see of another: no e-mail, role or state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublicUser {
    pub id: UserId,
    pub username: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<&User> for PublicUser {
    fn from(user: &User) -> Self {
        Self {
            id: user.id,
            username: user.username.clone(),
            created_at: user.created_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::UserId;

    #[test]
    fn only_the_canonical_decimal_form_is_a_user_id() {
        assert_eq!(UserId::parse("2"), Ok(UserId(2)));
        assert_eq!(UserId::parse("0"), Ok(UserId(0)));
        assert_eq!(UserId::parse("9223372036854775807"), Ok(UserId(i64::MAX)));
        for text in [
            "02",
            "+2",
            "-2",
            " 2",
            "2 ",
            "",
            "2e0",
            "9223372036854775808",
            "٢",
        ] {
            assert!(UserId::parse(text).is_err(), "{text:?}");
        }
    }
}
