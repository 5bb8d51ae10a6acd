//! Accounts and their sessions: single login by default, several (up to
//! `auth.max_sessions`) with `auth.single_session = false`.

use std::sync::Arc;

use secrecy::SecretString;
use serde::Deserialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

use serde_json::json;

use super::audit::{self, AuditService};
use super::jobs::OutboxSignal;
use super::passwords::{PasswordHasher, Priority};
use super::rate_limit::{AccountKey, ClientKey, RateLimitService};
pub use super::sessions::Principal;
use super::sessions::{ClientInfo, SessionService, SessionView, Tokens};
use super::tokens::TokenSubject;
use super::users::UserService;
use crate::domain::{
    Email, Job, Password, RefreshToken, Role, SessionId, Task, User, UserId, Username,
};
use crate::error::{AppError, FieldError};
use crate::repositories::redis::RateDecision;
use crate::repositories::sql::{Credentials, LoginName, NewUser, UserRepository};

// Fields are optional in Rust so a missing one is reported by name with
// the other problems, not as a parse error; the API documents them as required.

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"username": "alice", "email": "alice@example.com", "password": "correct horse"}))]
pub struct Registration {
    /// 3–32 of `A-Z a-z 0-9 _ . -`; unique, whatever the case.
    #[schema(required = true, value_type = String, min_length = 3, max_length = 32, pattern = "^[A-Za-z0-9_.-]{3,32}$")]
    pub username: Option<String>,
    /// Stored lower-case; unique.
    #[schema(required = true, value_type = String, format = Email)]
    pub email: Option<String>,
    #[schema(required = true, value_type = String, format = Password, min_length = 8, max_length = 128)]
    pub password: Option<SecretString>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"username": "alice", "password": "correct horse"}))]
pub struct LoginAttempt {
    /// The username, or the e-mail address.
    #[schema(required = true, value_type = String)]
    pub username: Option<String>,
    #[schema(required = true, value_type = String, format = Password)]
    pub password: Option<SecretString>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"current_password": "correct horse", "new_password": "battery staple"}))]
pub struct PasswordChange {
    #[schema(required = true, value_type = String, format = Password)]
    pub current_password: Option<SecretString>,
    #[schema(required = true, value_type = String, format = Password, min_length = 8, max_length = 128)]
    pub new_password: Option<SecretString>,
}

/// What `create-admin` did.
pub enum AdminAccount {
    Created(User),
    /// The username existed: that user was made an admin, nothing else changed.
    Promoted(User),
}

/// A login's outcome and the login limit it counted against, which the
/// response reports whatever the outcome.
pub struct LoginResult {
    pub outcome: Result<Tokens, AppError>,
    pub limit: Option<RateDecision>,
}

#[derive(Clone)]
pub struct AuthService {
    users: Arc<dyn UserRepository>,
    user_service: UserService,
    sessions: SessionService,
    hasher: PasswordHasher,
    rate_limits: Arc<RateLimitService>,
    outbox: OutboxSignal,
    /// Login refuses unverified addresses (after a correct password).
    require_verified_email: bool,
    audit: AuditService,
}

/// Collects a required field, recording an error when it is missing.
fn required<T>(value: Option<T>, field: &str, errors: &mut Vec<FieldError>) -> Option<T> {
    if value.is_none() {
        errors.push(FieldError::new(field, "is required"));
    }
    value
}

fn checked<T>(parsed: Result<T, String>, field: &str, errors: &mut Vec<FieldError>) -> Option<T> {
    parsed
        .map_err(|message| errors.push(FieldError::new(field, message)))
        .ok()
}

impl AuthService {
    pub fn new(
        users: Arc<dyn UserRepository>,
        user_service: UserService,
        sessions: SessionService,
        hasher: PasswordHasher,
        rate_limits: Arc<RateLimitService>,
        outbox: OutboxSignal,
        audit: AuditService,
    ) -> Self {
        Self {
            users,
            user_service,
            sessions,
            hasher,
            rate_limits,
            outbox,
            require_verified_email: false,
            audit,
        }
    }

    /// With `required`, login answers 403 `email_not_verified` until the
    /// address is verified.
    pub fn requiring_verified_email(self, required: bool) -> Self {
        Self {
            require_verified_email: required,
            ..self
        }
    }

    #[tracing::instrument(skip_all)]
    pub async fn register(&self, registration: Registration, role: Role) -> Result<User, AppError> {
        let mut errors = Vec::new();
        let username = required(registration.username, "username", &mut errors)
            .and_then(|value| checked(Username::parse(&value), "username", &mut errors));
        let email = required(registration.email, "email", &mut errors)
            .and_then(|value| checked(Email::parse(&value), "email", &mut errors));
        let password = required(registration.password, "password", &mut errors)
            .and_then(|value| checked(Password::parse(value), "password", &mut errors));
        let (Some(username), Some(email), Some(password)) = (username, email, password) else {
            return Err(AppError::Validation(errors));
        };
        let password_hash = self
            .hasher
            .hash(password.expose(), Priority::Registration)
            .await?;
        let now = OffsetDateTime::now_utc();
        // The worker mints the verification link when it sends the mail.
        let welcome = Job::new(Task::WelcomeEmail {
            to: email.as_str().to_string(),
            username: username.as_str().to_string(),
            requested_at_ms: (now.unix_timestamp_nanos() / 1_000_000) as i64,
        });
        let new_user = NewUser {
            username: username.as_str(),
            email: email.as_str(),
            password_hash: &password_hash,
            role,
            now,
        };
        let event = audit::event(
            "user.registered",
            None,
            None,
            json!({"role": role.as_str()}),
        );
        // The welcome mail and the event are committed with the user, or not at all.
        let user = self.users.insert(new_user, &welcome, &event).await?;
        self.outbox.notify();
        tracing::info!(user = %user.id, "user registered");
        Ok(user)
    }

    /// Creates an admin account, or promotes the user who has this username.
    pub async fn create_admin(
        &self,
        username: String,
        email: String,
        password: SecretString,
    ) -> Result<AdminAccount, AppError> {
        let existing = self
            .users
            .find_credentials(LoginName::Username(&username))
            .await?;
        if let Some(existing) = existing {
            let user = self.user_service.promote_to_admin(existing.id).await?;
            return Ok(AdminAccount::Promoted(user));
        }
        let registration = Registration {
            username: Some(username),
            email: Some(email),
            password: Some(password),
        };
        Ok(AdminAccount::Created(
            self.register(registration, Role::Admin).await?,
        ))
    }

    /// Checks the password and starts a session (ending the others, with
    /// single login). Attempts are limited per client and per account tried.
    #[tracing::instrument(skip_all)]
    pub async fn login(
        &self,
        attempt: LoginAttempt,
        client: &ClientKey,
        origin: &ClientInfo,
    ) -> LoginResult {
        let mut errors = Vec::new();
        let login = required(attempt.username, "username", &mut errors);
        let password = required(attempt.password, "password", &mut errors);
        let (Some(login), Some(password)) = (login, password) else {
            return LoginResult {
                outcome: Err(AppError::Validation(errors)),
                limit: None,
            };
        };
        let (credentials, limit) = match self.limit_attempt_on(client, &login).await {
            Ok(found) => found,
            Err(error) => {
                return LoginResult {
                    outcome: Err(error),
                    limit: None,
                };
            }
        };
        LoginResult {
            outcome: self
                .verify_and_start_session(credentials, &password, origin)
                .await,
            limit,
        }
    }

    /// Resolves a login name (a username, or an e-mail address in either
    /// IDNA form) to its account, and counts one attempt against the login
    /// limits: per client, and per account — so its username and its
    /// address share one count; a name without an account is counted as
    /// normalised. Every check of an account's secret calls this first.
    pub async fn limit_attempt_on(
        &self,
        client: &ClientKey,
        login: &str,
    ) -> Result<(Option<Credentials>, Option<RateDecision>), AppError> {
        let login = login.trim().to_lowercase();
        let login = if login.contains('@') {
            Email::parse(&login).map_or(login, |email| email.as_str().to_string())
        } else {
            login
        };
        let lookup = if login.contains('@') {
            LoginName::Email(&login)
        } else {
            LoginName::Username(&login)
        };
        let credentials = self.users.find_credentials(lookup).await?;
        let account = credentials.as_ref().map_or_else(
            || AccountKey::UnknownName(login.clone()),
            |found| AccountKey::Account(found.id),
        );
        let limit = self.rate_limits.check_login(client, &account).await?;
        Ok((credentials, limit))
    }

    async fn verify_and_start_session(
        &self,
        credentials: Option<Credentials>,
        password: &SecretString,
        origin: &ClientInfo,
    ) -> Result<Tokens, AppError> {
        let hash = credentials
            .as_ref()
            .map(|found| found.password_hash.as_str());
        // Unknown users are verified against a dummy hash: same answer, same time.
        if !self.hasher.verify(password, hash).await? {
            // The account, if there is one; never the name typed, which is
            // sometimes a password typed in the wrong field.
            let account = credentials.as_ref().map(|found| found.id);
            self.audit
                .record(audit::event("auth.login_failed", None, account, json!({})))
                .await;
            return Err(AppError::InvalidCredentials);
        }
        let Some(credentials) = credentials else {
            return Err(AppError::InvalidCredentials);
        };
        // Only now, after a correct password: no oracle for guessers.
        if credentials.disabled {
            return Err(AppError::AccountDisabled);
        }
        if self.require_verified_email && !credentials.email_verified {
            return Err(AppError::EmailNotVerified);
        }
        // `None`: a password change, deletion or disabling committed while
        // we were verifying; it must not be outlived by a new session.
        let tokens = self
            .sessions
            .start(
                credentials.id,
                credentials.role,
                &credentials.password_hash,
                origin,
            )
            .await?
            .ok_or(AppError::InvalidCredentials)?;
        tracing::info!(user = %credentials.id, "logged in");
        Ok(tokens)
    }

    /// A new token pair for the session of `refresh_token` (rotation).
    pub async fn refresh(&self, refresh_token: Option<String>) -> Result<Tokens, AppError> {
        let presented =
            refresh_token.ok_or_else(|| AppError::validation("refresh_token", "is required"))?;
        let presented = RefreshToken::parse(presented.trim()).ok_or(AppError::Unauthorized)?;
        self.sessions.refresh(&presented).await
    }

    /// The claims of a well-signed, unexpired token; not yet a `Principal`:
    /// only a session check (`authenticate`, or a service read that does
    /// it in the same round trip) makes one.
    pub fn verify_token(&self, token: &str) -> Result<TokenSubject, AppError> {
        self.sessions.verify_token(token)
    }

    /// The caller, if the token is valid and its session live. Fails
    /// closed: without Redis, no one is authenticated.
    pub async fn authenticate(&self, token: &str) -> Result<Principal, AppError> {
        let subject = self.verify_token(token)?;
        self.sessions.authenticate(subject).await
    }

    /// Ends the caller's session at once.
    pub async fn logout(&self, principal: &Principal) -> Result<(), AppError> {
        let event = audit::event(
            "auth.logout",
            Some(principal.user),
            Some(principal.user),
            json!({"session": principal.session.as_str()}),
        );
        self.sessions
            .end(principal.user, &principal.session, Some(event))
            .await?;
        Ok(())
    }

    /// Ends every session of the caller at once.
    pub async fn logout_all(&self, principal: &Principal) -> Result<(), AppError> {
        let event = audit::event(
            "auth.logout_all",
            Some(principal.user),
            Some(principal.user),
            json!({}),
        );
        self.sessions.end_all(principal.user, Some(event)).await
    }

    pub async fn sessions(&self, principal: &Principal) -> Result<Vec<SessionView>, AppError> {
        self.sessions.list(principal).await
    }

    /// Ends one of the caller's own sessions; `not_found` for any other id.
    pub async fn end_session(&self, principal: &Principal, id: &str) -> Result<(), AppError> {
        let id = SessionId::parse(id).ok_or(AppError::NotFound("session"))?;
        let event = audit::event(
            "session.revoked",
            Some(principal.user),
            Some(principal.user),
            json!({"session": id.as_str()}),
        );
        if self.sessions.end(principal.user, &id, Some(event)).await? {
            Ok(())
        } else {
            Err(AppError::NotFound("session"))
        }
    }

    /// Ends every session of `user`: the user itself or an admin.
    pub async fn end_sessions_of(&self, actor: &Principal, user: UserId) -> Result<(), AppError> {
        actor.require_self_or_admin(user)?;
        if self.users.find_credentials_by_id(user).await?.is_none() {
            return Err(AppError::NotFound("user"));
        }
        let event = audit::event(
            "session.revoked",
            Some(actor.user),
            Some(user),
            json!({"all": true}),
        );
        self.sessions.end_all(user, Some(event)).await
    }

    #[tracing::instrument(skip_all, fields(user = %principal.user))]
    pub async fn change_password(
        &self,
        principal: &Principal,
        change: PasswordChange,
        client: &ClientKey,
    ) -> Result<(), AppError> {
        let mut errors = Vec::new();
        let current = required(change.current_password, "current_password", &mut errors);
        let new = required(change.new_password, "new_password", &mut errors)
            .and_then(|value| checked(Password::parse(value), "new_password", &mut errors));
        let (Some(current), Some(new)) = (current, new) else {
            return Err(AppError::Validation(errors));
        };
        // A stolen token must not guess the password faster than a login.
        self.rate_limits
            .check_login(client, &AccountKey::Account(principal.user))
            .await?;
        let credentials = self
            .users
            .find_credentials_by_id(principal.user)
            .await?
            .ok_or(AppError::Unauthorized)?;
        if !self
            .hasher
            .verify(&current, Some(&credentials.password_hash))
            .await?
        {
            return Err(AppError::InvalidCredentials);
        }
        let hash = self.hasher.hash(new.expose(), Priority::SignIn).await?;
        let now = OffsetDateTime::now_utc();
        let event = audit::event(
            "auth.password_changed",
            Some(principal.user),
            Some(principal.user),
            json!({}),
        );
        let set = self
            .users
            .set_password_hash(principal.user, &hash, now, &event)
            .await?
            .ok_or(AppError::Unauthorized)?;
        self.sessions.end_in_redis(set.ended).await;
        // updated_at changed: cached copies are stale.
        self.user_service
            .invalidate(principal.user, set.version)
            .await;
        tracing::info!("password changed; sessions ended");
        Ok(())
    }
}
