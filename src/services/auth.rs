//! Accounts and single-login sessions.

use std::sync::Arc;

use secrecy::SecretString;
use serde::Deserialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::jobs::OutboxSignal;
use super::passwords::PasswordHasher;
use super::rate_limit::{ClientKey, RateLimitService};
use super::sessions::SessionService;
use super::tokens::{TokenIssuer, TokenSubject};
use super::users::UserService;
use crate::domain::{Email, Job, Password, Role, Task, User, Username};
use crate::error::{AppError, FieldError};
use crate::repositories::redis::RateDecision;
use crate::repositories::sql::{LoginName, NewUser, UserRepository};

// Fields are optional in Rust so a missing one is reported by name with
// the other problems, not as a parse error; the API documents them as required.

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
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
pub struct LoginAttempt {
    /// The username, or the e-mail address.
    #[schema(required = true, value_type = String)]
    pub username: Option<String>,
    #[schema(required = true, value_type = String, format = Password)]
    pub password: Option<SecretString>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
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
    pub outcome: Result<AccessToken, AppError>,
    pub limit: Option<RateDecision>,
}

pub struct AccessToken {
    pub token: String,
    pub expires_in: u64,
}

/// The caller of an authenticated request.
pub type Principal = TokenSubject;

impl Principal {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

#[derive(Clone)]
pub struct AuthService {
    users: Arc<dyn UserRepository>,
    user_service: UserService,
    sessions: SessionService,
    tokens: Arc<TokenIssuer>,
    hasher: PasswordHasher,
    rate_limits: Arc<RateLimitService>,
    outbox: OutboxSignal,
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
        tokens: Arc<TokenIssuer>,
        hasher: PasswordHasher,
        rate_limits: Arc<RateLimitService>,
        outbox: OutboxSignal,
    ) -> Self {
        Self {
            users,
            user_service,
            sessions,
            tokens,
            hasher,
            rate_limits,
            outbox,
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
        let password_hash = self.hasher.hash(password.expose()).await?;
        let welcome = Job::new(Task::WelcomeEmail {
            to: email.as_str().to_string(),
            username: username.as_str().to_string(),
        });
        let new_user = NewUser {
            username: username.as_str(),
            email: email.as_str(),
            password_hash: &password_hash,
            role,
            now: OffsetDateTime::now_utc(),
        };
        // The welcome mail is committed with the user, or not at all.
        let user = self.users.insert(new_user, &welcome).await?;
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

    /// Checks the password and makes a new token the user's only valid one.
    /// Attempts are limited per client and per account tried.
    #[tracing::instrument(skip_all)]
    pub async fn login(&self, attempt: LoginAttempt, client: &ClientKey) -> LoginResult {
        let mut errors = Vec::new();
        let login = required(attempt.username, "username", &mut errors);
        let password = required(attempt.password, "password", &mut errors);
        let (Some(login), Some(password)) = (login, password) else {
            return LoginResult {
                outcome: Err(AppError::Validation(errors)),
                limit: None,
            };
        };
        let login = login.trim().to_lowercase();
        match self.rate_limits.check_login(client, &login).await {
            Ok(limit) => LoginResult {
                outcome: self.verify_and_start_session(&login, &password).await,
                limit,
            },
            Err(error) => LoginResult {
                outcome: Err(error),
                limit: None,
            },
        }
    }

    async fn verify_and_start_session(
        &self,
        login: &str,
        password: &SecretString,
    ) -> Result<AccessToken, AppError> {
        let lookup = if login.contains('@') {
            LoginName::Email(login)
        } else {
            LoginName::Username(login)
        };
        let credentials = self.users.find_credentials(lookup).await?;
        let hash = credentials
            .as_ref()
            .map(|found| found.password_hash.as_str());
        // Unknown users are verified against a dummy hash: same answer, same time.
        if !self.hasher.verify(password, hash).await? {
            return Err(AppError::InvalidCredentials);
        }
        let Some(credentials) = credentials else {
            return Err(AppError::InvalidCredentials);
        };
        let issued = self
            .tokens
            .issue(credentials.id, credentials.role)
            .map_err(AppError::Internal)?;
        self.sessions
            .start(credentials.id, &issued.jti, issued.lifetime)
            .await?;
        // A password change or deletion that committed while we were
        // verifying has already ended sessions; don't let this one outlive it.
        let still_valid = self
            .users
            .find_credentials_by_id(credentials.id)
            .await?
            .is_some_and(|now| now.password_hash == credentials.password_hash);
        if !still_valid {
            self.sessions
                .end_if_current(credentials.id, &issued.jti)
                .await?;
            return Err(AppError::InvalidCredentials);
        }
        tracing::info!(user = %credentials.id, "logged in");
        Ok(AccessToken {
            token: issued.token,
            expires_in: issued.lifetime.as_secs(),
        })
    }

    /// The principal of a bearer token that is signed, unexpired and still
    /// the user's current session. Fails closed: without Redis, no one is
    /// authenticated.
    pub async fn authenticate(&self, token: &str) -> Result<Principal, AppError> {
        let subject = self.verify_token(token)?;
        let session = self.sessions.current(subject.user).await?;
        if subject.is_current(session.as_deref()) {
            Ok(subject)
        } else {
            Err(AppError::Unauthorized)
        }
    }

    /// The claims of a well-signed, unexpired token — not yet checked
    /// against the session, which the caller must do (see
    /// `UserService::get_as`, which reads it with the user in one round trip).
    pub fn verify_token(&self, token: &str) -> Result<TokenSubject, AppError> {
        self.tokens.verify(token).ok_or(AppError::Unauthorized)
    }

    pub async fn logout(&self, principal: &Principal) -> Result<(), AppError> {
        self.sessions
            .end_if_current(principal.user, &principal.jti)
            .await?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(user = %principal.user))]
    pub async fn change_password(
        &self,
        principal: &Principal,
        change: PasswordChange,
    ) -> Result<(), AppError> {
        let mut errors = Vec::new();
        let current = required(change.current_password, "current_password", &mut errors);
        let new = required(change.new_password, "new_password", &mut errors)
            .and_then(|value| checked(Password::parse(value), "new_password", &mut errors));
        let (Some(current), Some(new)) = (current, new) else {
            return Err(AppError::Validation(errors));
        };
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
        let hash = self.hasher.hash(new.expose()).await?;
        let now = OffsetDateTime::now_utc();
        let version = self
            .users
            .set_password_hash(principal.user, &hash, now)
            .await?
            .ok_or(AppError::Unauthorized)?;
        self.sessions.end(principal.user).await?;
        // updated_at changed: cached copies are stale.
        self.user_service.invalidate(principal.user, version).await;
        tracing::info!("password changed; sessions ended");
        Ok(())
    }
}
