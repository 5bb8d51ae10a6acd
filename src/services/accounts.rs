//! E-mail verification and password reset: the requests people make with
//! the links mailed to them. The mails themselves go through the outbox
//! (`account_mail` sends them); a request never waits for SMTP.

use std::sync::Arc;

use time::OffsetDateTime;

use serde_json::json;

use super::audit;
use super::outbox::OutboxSignal;
use super::passwords::{PasswordHasher, Priority};
use super::rate_limit::{AccountKey, ClientKey, RateLimitService};
use super::sessions::{Principal, SessionService};
use super::users::UserService;
use crate::domain::{AccountToken, Email, Job, Password, Task};
use crate::error::AppError;
use crate::repositories::sql::{
    AccountTokenRepository, LoginName, OutboxRepository, UserRepository,
};

#[derive(Clone)]
pub struct AccountService {
    users: Arc<dyn UserRepository>,
    tokens: Arc<dyn AccountTokenRepository>,
    outbox: Arc<dyn OutboxRepository>,
    signal: OutboxSignal,
    user_service: UserService,
    sessions: SessionService,
    hasher: PasswordHasher,
    rate_limits: Arc<RateLimitService>,
}

fn now_ms(now: OffsetDateTime) -> i64 {
    (now.unix_timestamp_nanos() / 1_000_000) as i64
}

impl AccountService {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        users: Arc<dyn UserRepository>,
        tokens: Arc<dyn AccountTokenRepository>,
        outbox: Arc<dyn OutboxRepository>,
        signal: OutboxSignal,
        user_service: UserService,
        sessions: SessionService,
        hasher: PasswordHasher,
        rate_limits: Arc<RateLimitService>,
    ) -> Self {
        Self {
            users,
            tokens,
            outbox,
            signal,
            user_service,
            sessions,
            hasher,
            rate_limits,
        }
    }

    /// Marks the address verified, spending the token.
    #[tracing::instrument(skip_all)]
    pub async fn verify_email(&self, client: &ClientKey, token: &str) -> Result<(), AppError> {
        // Counted before the token is looked at: guessing costs tries.
        self.rate_limits.check_login_client(client).await?;
        let token = AccountToken::parse(token.trim()).ok_or(AppError::InvalidToken)?;
        let now = OffsetDateTime::now_utc();
        let (user, version) = self
            .tokens
            .verify_email(
                &token.hash(),
                now,
                &audit::event("auth.email_verified", None, None, json!({})),
            )
            .await?
            .ok_or(AppError::InvalidToken)?;
        self.user_service.invalidate(user, version).await;
        tracing::info!(user = %user, "e-mail address verified");
        Ok(())
    }

    /// Queues a new verification mail for the caller's address; its link
    /// spends the older ones. Nothing is sent once the address is verified.
    #[tracing::instrument(skip_all, fields(user = %principal.user))]
    pub async fn resend_verification(
        &self,
        client: &ClientKey,
        principal: &Principal,
    ) -> Result<(), AppError> {
        let user = self
            .users
            .find(principal.user)
            .await?
            .ok_or(AppError::Unauthorized)?;
        self.rate_limits
            .check_login(client, &AccountKey::Account(user.id))
            .await?;
        if user.email_verified {
            return Ok(());
        }
        let now = OffsetDateTime::now_utc();
        let job = Job::new(Task::VerifyEmail {
            to: user.email,
            requested_at_ms: now_ms(now),
        });
        self.outbox.add(&job, now).await?;
        self.signal.notify();
        Ok(())
    }

    /// Queues a reset mail for whichever account has this address. The
    /// request does the same work whether one has it or not (the same
    /// look-up, and one transaction writing the outbox row and the audit
    /// event; the worker decides whether a mail goes out), so neither the
    /// answer nor its time tells whether the address is known.
    #[tracing::instrument(skip_all)]
    pub async fn forgot_password(&self, client: &ClientKey, email: Email) -> Result<(), AppError> {
        // Counted like a login by this address: against its account when
        // there is one. The look-up runs for every address alike, so it
        // tells nothing by its time either.
        let found = self
            .users
            .find_credentials(LoginName::Email(email.as_str()))
            .await?
            .map(|found| found.id);
        let account = found.map_or_else(
            || AccountKey::UnknownName(email.as_str().to_string()),
            AccountKey::Account,
        );
        self.rate_limits.check_login(client, &account).await?;
        let now = OffsetDateTime::now_utc();
        let job = Job::new(Task::PasswordReset {
            to: email.as_str().to_string(),
            requested_at_ms: now_ms(now),
        });
        // Recorded for unknown addresses too (no subject): the same write
        // either way, and an admin sees addresses being probed.
        let event = audit::event("auth.password_reset_requested", None, found, json!({}));
        self.outbox.add_recorded(&job, now, &event).await?;
        self.signal.notify();
        Ok(())
    }

    /// Sets the password of the token's account, spends the token, and
    /// ends every session of the user.
    #[tracing::instrument(skip_all)]
    pub async fn reset_password(
        &self,
        client: &ClientKey,
        token: &str,
        password: Password,
    ) -> Result<(), AppError> {
        self.rate_limits.check_login_client(client).await?;
        let token = AccountToken::parse(token.trim()).ok_or(AppError::InvalidToken)?;
        let hash = self
            .hasher
            .hash(password.expose(), Priority::SignIn)
            .await?;
        let now = OffsetDateTime::now_utc();
        let set = self
            .tokens
            .reset_password(
                &token.hash(),
                &hash,
                now,
                &audit::event("auth.password_reset", None, None, json!({})),
            )
            .await?
            .ok_or(AppError::InvalidToken)?;
        self.sessions.end_in_redis(set.ended).await;
        // updated_at changed: cached copies are stale.
        self.user_service.invalidate(set.user, set.version).await;
        tracing::info!(user = %set.user, "password reset; sessions ended");
        Ok(())
    }
}
