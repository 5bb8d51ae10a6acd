//! Accounts and their sessions: single login by default, several (up to
//! `auth.max_sessions`) with `auth.single_session = false`.

mod login;

use std::sync::Arc;

use secrecy::SecretString;
use time::OffsetDateTime;

use serde_json::json;

use super::audit::{self, AuditService};
use super::outbox::OutboxSignal;
use super::passwords::{PasswordHasher, Priority};
use super::rate_limit::{AccountKey, ClientKey, RateLimitService};
use super::sessions::{Principal, SessionService, SessionView, Tokens};
use super::tokens::TokenSubject;
use super::users::UserService;
use crate::domain::{
    Email, Job, Password, RefreshToken, Role, SessionId, Task, User, UserId, Username,
};
use crate::error::{AppError, Problems};
use crate::repositories::sql::{LoginName, NewUser, UserRepository};
pub use login::LoginResult;

/// A new account's fields, each checked.
pub struct NewAccount {
    pub username: Username,
    pub email: Email,
    pub password: Password,
}

impl NewAccount {
    /// Checks the fields as given, naming every one that is missing or
    /// wrong in one error.
    pub fn parse(
        username: Option<String>,
        email: Option<String>,
        password: Option<SecretString>,
    ) -> Result<Self, AppError> {
        let mut problems = Problems::default();
        let username = problems.parsed(username, "username", |value| Username::parse(&value));
        let email = problems.parsed(email, "email", |value| Email::parse(&value));
        let password = problems.parsed(password, "password", Password::parse);
        let account = match (username, email, password) {
            (Some(username), Some(email), Some(password)) => Some(Self {
                username,
                email,
                password,
            }),
            _ => None,
        };
        problems.or(account)
    }
}

/// What `create-admin` did.
pub enum AdminAccount {
    Created(User),
    /// The username existed: that user was made an admin, nothing else changed.
    Promoted(User),
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
    pub async fn register(&self, account: NewAccount, role: Role) -> Result<User, AppError> {
        let NewAccount {
            username,
            email,
            password,
        } = account;
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
        let account = NewAccount::parse(Some(username), Some(email), Some(password))?;
        Ok(AdminAccount::Created(
            self.register(account, Role::Admin).await?,
        ))
    }

    /// A new token pair for the session of `refresh_token` (rotation).
    pub async fn refresh(&self, presented: &str) -> Result<Tokens, AppError> {
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
        current: &SecretString,
        new: Password,
        client: &ClientKey,
    ) -> Result<(), AppError> {
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
            .verify(current, Some(&credentials.password_hash))
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
