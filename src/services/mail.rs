//! Sending mail: SMTP (lettre), `.eml` files, or the log.

use std::time::Duration;

use anyhow::Context;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;

use crate::config::{MailSettings, MailTransport, SmtpTls};

/// One message to send: a plain-text and an HTML version of the same text.
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[derive(Clone)]
enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    File(AsyncFileTransport<Tokio1Executor>),
    Log,
}

#[derive(Clone)]
pub struct Mailer {
    from: Mailbox,
    transport: Transport,
    /// For the whole SMTP delivery: lettre's own timeout (async) bounds
    /// only the connect, and a server that stalls mid-session would hold
    /// the worker for good.
    smtp_timeout: Duration,
}

impl Mailer {
    pub fn new(settings: &MailSettings) -> anyhow::Result<Self> {
        let from: Mailbox = settings
            .from
            .parse()
            .context("mail.from is not a mailbox")?;
        let transport = match settings.transport {
            MailTransport::Smtp => {
                let host = settings.smtp_host.as_str();
                let builder = match settings.smtp_tls {
                    SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
                    SmtpTls::Starttls => {
                        AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)?
                    }
                    SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host)?,
                };
                let mut builder = builder
                    .port(settings.smtp_port)
                    .timeout(Some(Duration::from_secs(settings.smtp_timeout_seconds)));
                if !settings.smtp_username.is_empty() {
                    builder = builder.credentials(Credentials::new(
                        settings.smtp_username.clone(),
                        settings.smtp_password.expose_secret().to_string(),
                    ));
                }
                Transport::Smtp(builder.build())
            }
            MailTransport::File => {
                std::fs::create_dir_all(&settings.file_dir).with_context(|| {
                    format!("cannot create mail.file_dir {}", settings.file_dir)
                })?;
                Transport::File(AsyncFileTransport::new(&settings.file_dir))
            }
            MailTransport::Log => Transport::Log,
        };
        Ok(Self {
            from,
            transport,
            smtp_timeout: Duration::from_secs(settings.smtp_timeout_seconds),
        })
    }

    pub async fn send(&self, mail: &Mail) -> anyhow::Result<()> {
        let message = Message::builder()
            .from(self.from.clone())
            .to(mail.to.parse().context("recipient is not a mailbox")?)
            .subject(&mail.subject)
            .multipart(MultiPart::alternative_plain_html(
                mail.text.clone(),
                mail.html.clone(),
            ))
            .context("building the message")?;
        match &self.transport {
            Transport::Smtp(smtp) => tokio::time::timeout(self.smtp_timeout, smtp.send(message))
                .await
                .with_context(|| format!("SMTP delivery timed out after {:?}", self.smtp_timeout))?
                .map(drop)
                .context("SMTP delivery failed"),
            Transport::File(file) => file
                .send(message)
                .await
                .map(drop)
                .context("writing the .eml file failed"),
            Transport::Log => {
                // Not the body: it may carry a link with a one-time token.
                tracing::info!(to = %mail.to, subject = %mail.subject, "mail (log transport)");
                Ok(())
            }
        }
    }
}
