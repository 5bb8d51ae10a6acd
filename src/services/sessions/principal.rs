//! Who is calling: a `Principal`, and an `Admin` once that was checked.

use crate::domain::{Role, SessionId, UserId};
use crate::error::AppError;
use crate::services::tokens::TokenSubject;

/// The caller of an authenticated request: a valid token whose session was
/// found live. Only the session service makes one (`checked` is visible to
/// it alone), so no handler can skip the check.
// A private field, not `#[non_exhaustive]`: that would still let every
// module of this crate build one.
#[allow(clippy::manual_non_exhaustive)]
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: UserId,
    pub role: Role,
    pub session: SessionId,
    _checked: (),
}

impl Principal {
    /// For the session service, once it found the session live.
    pub(super) fn checked(subject: TokenSubject) -> Self {
        Self {
            user: subject.user,
            role: subject.role,
            session: subject.session,
            _checked: (),
        }
    }

    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// The caller as an admin, or `forbidden`. The one admin check: every
    /// admin-only operation takes the `Admin` this returns.
    pub fn require_admin(&self) -> Result<Admin<'_>, AppError> {
        if self.is_admin() {
            Ok(Admin(self))
        } else {
            Err(AppError::Forbidden)
        }
    }

    /// `forbidden` unless the caller is `user` or an admin.
    pub fn require_self_or_admin(&self, user: UserId) -> Result<(), AppError> {
        if self.user == user {
            Ok(())
        } else {
            self.require_admin().map(|_| ())
        }
    }
}

/// A caller found to be an admin: only `Principal::require_admin` makes one.
#[derive(Debug, Clone, Copy)]
pub struct Admin<'a>(&'a Principal);

impl std::ops::Deref for Admin<'_> {
    type Target = Principal;

    fn deref(&self) -> &Principal {
        self.0
    }
}
