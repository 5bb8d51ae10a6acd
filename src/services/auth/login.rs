//! Logging in: the login limits, the password check, and a new session.

use secrecy::SecretString;
use serde_json::json;

use super::AuthService;
use crate::domain::{Email, RateDecision};
use crate::error::AppError;
use crate::repositories::sql::{Credentials, LoginName};
use crate::services::audit;
use crate::services::rate_limit::{AccountKey, ClientKey};
use crate::services::sessions::{ClientInfo, Tokens};

/// A login's outcome and the login limit it counted against, which the
/// response reports whatever the outcome.
pub struct LoginResult {
    pub outcome: Result<Tokens, AppError>,
    pub limit: Option<RateDecision>,
}

impl AuthService {
    /// Checks the password and starts a session (ending the others, with
    /// single login). Attempts are limited per client and per account tried.
    #[tracing::instrument(skip_all)]
    pub async fn login(
        &self,
        login: &str,
        password: &SecretString,
        client: &ClientKey,
        origin: &ClientInfo,
    ) -> LoginResult {
        let (credentials, limit) = match self.limit_attempt_on(client, login).await {
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
                .verify_and_start_session(credentials, password, origin)
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
}
