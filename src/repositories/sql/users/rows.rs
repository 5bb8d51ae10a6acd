//! The rows the user queries read, the column lists that select them, and
//! how they become domain values.

use time::OffsetDateTime;

use crate::domain::{Role, User, UserId};
use crate::repositories::sql::{Credentials, SqlError};

/// The columns of `UserRow`, as a literal so queries are built with `concat!`.
macro_rules! user_columns {
    () => {
        "id, username, email, email_verified, role, disabled, version, created_at, updated_at"
    };
}

#[derive(sqlx::FromRow)]
pub(super) struct UserRow {
    id: i64,
    username: String,
    email: String,
    email_verified: bool,
    role: String,
    disabled: bool,
    version: i64,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

#[derive(sqlx::FromRow)]
pub(super) struct CredentialsRow {
    id: i64,
    role: String,
    password_hash: String,
    email_verified: bool,
    disabled: bool,
}

/// The columns of `CredentialsRow`.
macro_rules! credential_columns {
    () => {
        "id, role, password_hash, email_verified, disabled"
    };
}

pub(super) use {credential_columns, user_columns};

pub(in crate::repositories::sql) fn parse_role(role: &str) -> Result<Role, SqlError> {
    Role::parse(role).ok_or_else(|| {
        SqlError::Other(sqlx::Error::Decode(
            format!("unknown role {role:?} in users.role").into(),
        ))
    })
}

impl TryFrom<UserRow> for User {
    type Error = SqlError;

    fn try_from(row: UserRow) -> Result<Self, SqlError> {
        Ok(User {
            id: UserId(row.id),
            role: parse_role(&row.role)?,
            username: row.username,
            email: row.email,
            email_verified: row.email_verified,
            disabled: row.disabled,
            created_at: row.created_at,
            updated_at: row.updated_at,
            version: row.version,
        })
    }
}

impl TryFrom<CredentialsRow> for Credentials {
    type Error = SqlError;

    fn try_from(row: CredentialsRow) -> Result<Self, SqlError> {
        Ok(Credentials {
            id: UserId(row.id),
            role: parse_role(&row.role)?,
            password_hash: row.password_hash,
            email_verified: row.email_verified,
            disabled: row.disabled,
        })
    }
}
