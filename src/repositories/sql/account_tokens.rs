//! One-time tokens (verification, reset), stored as hashes. The same SQL
//! text on both backends, as for users and sessions. Every spend is a
//! compare-and-set `UPDATE ... WHERE spent_at_ms IS NULL`: of two requests
//! presenting one token, exactly one gets the row.

use async_trait::async_trait;
use time::OffsetDateTime;

use super::audit::record_in;
use super::sessions::{END_ALL, session_ids};
use super::{NewAuditEvent, PasswordSet, SqlError};
use crate::domain::{TokenPurpose, UserId};

/// Whom a token is minted for.
#[derive(Clone, Copy)]
pub enum TokenOwner<'a> {
    /// The account with this address, while it is not verified.
    UnverifiedAddress { email: &'a str },
    /// The account with this address, unless it is disabled.
    EnabledAccount { email: &'a str },
}

impl TokenOwner<'_> {
    fn purpose(&self) -> TokenPurpose {
        match self {
            TokenOwner::UnverifiedAddress { .. } => TokenPurpose::Verify,
            TokenOwner::EnabledAccount { .. } => TokenPurpose::Reset,
        }
    }
}

pub struct NewToken<'a> {
    pub owner: TokenOwner<'a>,
    pub token_hash: &'a str,
    pub requested_at_ms: i64,
    pub expires_at_ms: i64,
    pub now_ms: i64,
}

/// The account a token was minted for, to address the mail.
pub struct TokenRecipient {
    pub user: UserId,
    pub username: String,
}

#[async_trait]
pub trait AccountTokenRepository: Send + Sync {
    /// Stores a token's hash and spends the older tokens of the same user
    /// and purpose, in one transaction that holds the user's row. `None`
    /// (nothing stored) when the owner does not qualify, or when a newer
    /// request already has its token.
    async fn mint(&self, token: NewToken<'_>) -> Result<Option<TokenRecipient>, SqlError>;

    /// Spends a live verification token and marks the address it was
    /// mailed to verified, if the account still has it; returns the user
    /// and its new row version.
    /// `event` is recorded with it, with the user as subject and actor.
    async fn verify_email(
        &self,
        token_hash: &str,
        now: OffsetDateTime,
        event: &NewAuditEvent,
    ) -> Result<Option<(UserId, i64)>, SqlError>;

    /// Spends a live reset token and sets the password hash of its account
    /// (still enabled, still at the address mailed), ending every session
    /// of the user; `event` is recorded with it, with the user as subject
    /// and actor.
    async fn reset_password(
        &self,
        token_hash: &str,
        password_hash: &str,
        now: OffsetDateTime,
        event: &NewAuditEvent,
    ) -> Result<Option<PasswordSet>, SqlError>;

    /// Deletes tokens that expired before `before_ms`.
    async fn prune(&self, before_ms: i64) -> Result<u64, SqlError>;
}

pub(super) fn millis(at: OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000_000) as i64
}

const SPEND: &str = "UPDATE account_tokens SET spent_at_ms = $3 \
     WHERE token_hash = $1 AND purpose = $2 AND spent_at_ms IS NULL AND expires_at_ms > $3 \
     RETURNING user_id, email";

macro_rules! sql_account_token_repository {
    ($name:ident, $database:ty) => {
        pool_repository!($name, $database);

        #[async_trait]
        impl AccountTokenRepository for $name {
            async fn mint(
                &self,
                token: NewToken<'_>,
            ) -> Result<Option<TokenRecipient>, SqlError> {
                let purpose = token.owner.purpose().as_str();
                let mut transaction = self.pool.begin().await?;
                // A write to the user's row, changing nothing: it holds the
                // row (PostgreSQL) or the database (SQLite) until the commit,
                // so two mints for one user are applied one after the other.
                let owner: Option<(i64, String)> = match token.owner {
                    TokenOwner::UnverifiedAddress { email } => {
                        sqlx::query_as(
                            "UPDATE users SET fence = fence \
                             WHERE email = $1 AND email_verified = FALSE RETURNING id, username",
                        )
                        .bind(email)
                        .fetch_optional(&mut *transaction)
                        .await?
                    }
                    TokenOwner::EnabledAccount { email } => {
                        sqlx::query_as(
                            "UPDATE users SET fence = fence WHERE email = $1 AND disabled = FALSE \
                             RETURNING id, username",
                        )
                        .bind(email)
                        .fetch_optional(&mut *transaction)
                        .await?
                    }
                };
                let Some((user, username)) = owner else {
                    return Ok(None);
                };
                let newer: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM account_tokens \
                     WHERE user_id = $1 AND purpose = $2 AND requested_at_ms > $3",
                )
                .bind(user)
                .bind(purpose)
                .bind(token.requested_at_ms)
                .fetch_one(&mut *transaction)
                .await?;
                if newer > 0 {
                    return Ok(None);
                }
                sqlx::query(
                    "UPDATE account_tokens SET spent_at_ms = $4 \
                     WHERE user_id = $1 AND purpose = $2 AND spent_at_ms IS NULL \
                     AND requested_at_ms <= $3",
                )
                .bind(user)
                .bind(purpose)
                .bind(token.requested_at_ms)
                .bind(token.now_ms)
                .execute(&mut *transaction)
                .await?;
                let email = match token.owner {
                    TokenOwner::UnverifiedAddress { email }
                    | TokenOwner::EnabledAccount { email } => email,
                };
                sqlx::query(
                    "INSERT INTO account_tokens \
                     (token_hash, purpose, user_id, email, requested_at_ms, expires_at_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(token.token_hash)
                .bind(purpose)
                .bind(user)
                .bind(email)
                .bind(token.requested_at_ms)
                .bind(token.expires_at_ms)
                .execute(&mut *transaction)
                .await?;
                transaction.commit().await?;
                Ok(Some(TokenRecipient {
                    user: UserId(user),
                    username,
                }))
            }

            async fn verify_email(
                &self,
                token_hash: &str,
                now: OffsetDateTime,
                event: &NewAuditEvent,
            ) -> Result<Option<(UserId, i64)>, SqlError> {
                let mut transaction = self.pool.begin().await?;
                let spent: Option<(i64, String)> = sqlx::query_as(SPEND)
                    .bind(token_hash)
                    .bind(TokenPurpose::Verify.as_str())
                    .bind(millis(now))
                    .fetch_optional(&mut *transaction)
                    .await?;
                let Some((user, email)) = spent else {
                    return Ok(None);
                };
                let version: Option<i64> = sqlx::query_scalar(
                    "UPDATE users SET email_verified = TRUE, version = version + 1, updated_at = $3 \
                     WHERE id = $1 AND email = $2 RETURNING version",
                )
                .bind(user)
                .bind(email)
                .bind(now)
                .fetch_optional(&mut *transaction)
                .await?;
                // The address changed since the mail: the token proves nothing.
                let Some(version) = version else {
                    return Ok(None);
                };
                record_in!(&mut *transaction, &event.by_and_about(UserId(user)))?;
                transaction.commit().await?;
                Ok(Some((UserId(user), version)))
            }

            async fn reset_password(
                &self,
                token_hash: &str,
                password_hash: &str,
                now: OffsetDateTime,
                event: &NewAuditEvent,
            ) -> Result<Option<PasswordSet>, SqlError> {
                let mut transaction = self.pool.begin().await?;
                let spent: Option<(i64, String)> = sqlx::query_as(SPEND)
                    .bind(token_hash)
                    .bind(TokenPurpose::Reset.as_str())
                    .bind(millis(now))
                    .fetch_optional(&mut *transaction)
                    .await?;
                let Some((user, email)) = spent else {
                    return Ok(None);
                };
                let version: Option<i64> = sqlx::query_scalar(
                    "UPDATE users SET password_hash = $3, version = version + 1, updated_at = $4 \
                     WHERE id = $1 AND email = $2 AND disabled = FALSE RETURNING version",
                )
                .bind(user)
                .bind(email)
                .bind(password_hash)
                .bind(now)
                .fetch_optional(&mut *transaction)
                .await?;
                let Some(version) = version else {
                    return Ok(None);
                };
                let ended: Vec<String> = sqlx::query_scalar(END_ALL)
                    .bind(user)
                    .bind(millis(now))
                    .fetch_all(&mut *transaction)
                    .await?;
                record_in!(&mut *transaction, &event.by_and_about(UserId(user)))?;
                transaction.commit().await?;
                Ok(Some(PasswordSet {
                    user: UserId(user),
                    version,
                    ended: session_ids(ended),
                }))
            }

            async fn prune(&self, before_ms: i64) -> Result<u64, SqlError> {
                let result = sqlx::query("DELETE FROM account_tokens WHERE expires_at_ms < $1")
                    .bind(before_ms)
                    .execute(&self.pool)
                    .await?;
                Ok(result.rows_affected())
            }
        }
    };
}

sql_account_token_repository!(SqliteAccountTokenRepository, sqlx::Sqlite);
sql_account_token_repository!(PgAccountTokenRepository, sqlx::Postgres);
