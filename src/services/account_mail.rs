//! The account mails a worker sends: welcome, verification, address-change
//! notice, password reset. Links carry a token minted here, at sending
//! time, so that no token ever sits in the outbox or the queue: only its
//! hash is stored, and the token itself exists only in the mail.

use std::sync::Arc;
use std::time::Duration;

use minijinja::context;
use time::OffsetDateTime;

use super::mail::Mailer;
use super::mail_templates::{MailKind, MailTemplates, describe_duration};
use crate::config::Settings;
use crate::domain::{AccountToken, Task};
use crate::repositories::sql::{AccountTokenRepository, NewToken, TokenOwner, TokenRecipient};

#[derive(Clone)]
pub struct AccountMailer {
    tokens: Arc<dyn AccountTokenRepository>,
    templates: Arc<MailTemplates>,
    mailer: Mailer,
    link_base_url: String,
    verify_ttl: Duration,
    reset_ttl: Duration,
}

/// A minted token and the account it is for.
struct Minted {
    token: AccountToken,
    recipient: TokenRecipient,
}

impl AccountMailer {
    pub fn new(
        tokens: Arc<dyn AccountTokenRepository>,
        mailer: Mailer,
        settings: &Settings,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            tokens,
            templates: Arc::new(MailTemplates::new()?),
            mailer,
            link_base_url: settings
                .mail
                .link_base_url
                .trim_end_matches('/')
                .to_string(),
            verify_ttl: Duration::from_secs(settings.auth.verify_ttl_seconds),
            reset_ttl: Duration::from_secs(settings.auth.reset_ttl_seconds),
        })
    }

    /// Does one mail task. A retry mints a new token, which spends the one
    /// of the failed attempt: only the link of the mail that went out works.
    pub async fn perform(&self, task: &Task) -> anyhow::Result<()> {
        match task {
            Task::WelcomeEmail {
                to,
                username,
                requested_at_ms,
            } => {
                let owner = TokenOwner::UnverifiedAddress { email: to };
                let minted = self.mint(owner, *requested_at_ms, self.verify_ttl).await?;
                let link = minted
                    .as_ref()
                    .map(|minted| self.link("verify-email", &minted.token));
                let context = context! {
                    username => username.clone(),
                    link => link,
                    valid_for => describe_duration(self.verify_ttl.as_secs()),
                };
                self.send(MailKind::Welcome, to, context).await
            }
            Task::VerifyEmail {
                to,
                requested_at_ms,
            } => {
                let owner = TokenOwner::UnverifiedAddress { email: to };
                let Some(minted) = self.mint(owner, *requested_at_ms, self.verify_ttl).await?
                else {
                    tracing::info!(
                        "address verified, changed or asked again since: no verification mail"
                    );
                    return Ok(());
                };
                let context = context! {
                    username => minted.recipient.username.clone(),
                    link => self.link("verify-email", &minted.token),
                    valid_for => describe_duration(self.verify_ttl.as_secs()),
                };
                self.send(MailKind::VerifyEmail, to, context).await
            }
            Task::EmailChangedNotice { to, username } => {
                let context = context! { username => username.clone() };
                self.send(MailKind::EmailChanged, to, context).await
            }
            Task::PasswordReset {
                to,
                requested_at_ms,
            } => {
                let owner = TokenOwner::EnabledAccount { email: to };
                // No account, a disabled one, or a newer request: no mail,
                // and the caller was told the same 202 either way.
                let Some(minted) = self.mint(owner, *requested_at_ms, self.reset_ttl).await? else {
                    return Ok(());
                };
                let context = context! {
                    username => minted.recipient.username.clone(),
                    link => self.link("reset-password", &minted.token),
                    valid_for => describe_duration(self.reset_ttl.as_secs()),
                };
                self.send(MailKind::PasswordReset, to, context).await
            }
        }
    }

    /// A token valid `ttl` from the request; `None` when the owner does not
    /// qualify, a newer request has its token, or the request is too old.
    async fn mint(
        &self,
        owner: TokenOwner<'_>,
        requested_at_ms: i64,
        ttl: Duration,
    ) -> anyhow::Result<Option<Minted>> {
        let now_ms = (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
        let expires_at_ms = requested_at_ms.saturating_add(ttl.as_millis() as i64);
        if expires_at_ms <= now_ms {
            return Ok(None);
        }
        let token = AccountToken::new_random()?;
        let recipient = self
            .tokens
            .mint(NewToken {
                owner,
                token_hash: &token.hash(),
                requested_at_ms,
                expires_at_ms,
                now_ms,
            })
            .await?;
        Ok(recipient.map(|recipient| Minted { token, recipient }))
    }

    /// Marked safe for HTML: made of the configured base URL and hex
    /// digits, and escaping would turn its `/` into `&#x2f;`.
    fn link(&self, page: &str, token: &AccountToken) -> minijinja::Value {
        minijinja::Value::from_safe_string(format!(
            "{}/{page}?token={}",
            self.link_base_url,
            token.as_str()
        ))
    }

    async fn send(
        &self,
        kind: MailKind,
        to: &str,
        context: minijinja::Value,
    ) -> anyhow::Result<()> {
        let mail = self.templates.render(kind, to, context)?;
        self.mailer.send(&mail).await
    }
}
