//! Who is calling: the check of an access token's session that makes a
//! `Principal`, and an `Admin` once that was checked.

use super::SessionService;
use crate::domain::{Role, SessionId, UserId};
use crate::error::AppError;
use crate::services::tokens::TokenSubject;

/// The caller of an authenticated request: a valid token whose session was
/// found live. Only the session service makes one (`checked` is private to
/// this module, where its `accept` is), so no handler can skip the check.
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
    fn checked(subject: TokenSubject) -> Self {
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

impl SessionService {
    /// The claims of a well-signed, unexpired access token; its session is
    /// still to be checked, by `authenticate` or `accept`.
    pub fn verify_token(&self, token: &str) -> Result<TokenSubject, AppError> {
        self.tokens.verify(token).ok_or(AppError::Unauthorized)
    }

    /// The caller, if the token's session is live. One Redis round trip (or
    /// none, from the near cache); without Redis no one is authenticated.
    pub async fn authenticate(&self, subject: TokenSubject) -> Result<Principal, AppError> {
        let value = self.reads.get(&self.store.key(&subject.session)).await?;
        Self::accept(subject, value.as_deref())
    }

    /// The key whose value `accept` needs, for callers that read it together
    /// with a value of their own.
    pub fn session_key(&self, subject: &TokenSubject) -> String {
        self.store.key(&subject.session)
    }

    /// The caller, if `value` (read from the session key) says the token's
    /// session is live and belongs to the token's user.
    pub fn accept(subject: TokenSubject, value: Option<&[u8]>) -> Result<Principal, AppError> {
        let live = value
            .and_then(|value| std::str::from_utf8(value).ok())
            .and_then(|value| value.parse::<i64>().ok())
            == Some(subject.user.0);
        if !live {
            return Err(AppError::Unauthorized);
        }
        Ok(Principal::checked(subject))
    }
}
