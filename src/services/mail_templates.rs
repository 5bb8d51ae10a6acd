//! The mails people read: a subject, a plain-text and an HTML part, each a
//! template of its own under `templates/mail/`, compiled into the binary.
//! HTML templates escape what they insert; the text ones insert it as is.

use anyhow::Context;
use minijinja::{Environment, Value};

use super::mail::Mail;

/// Each mail: `{name}.subject.txt`, `{name}.txt`, `{name}.html`.
macro_rules! mail_templates {
    ($($name:literal),* $(,)?) => {
        [$(
            (concat!($name, ".subject.txt"), include_str!(concat!("../../templates/mail/", $name, ".subject.txt"))),
            (concat!($name, ".txt"), include_str!(concat!("../../templates/mail/", $name, ".txt"))),
            (concat!($name, ".html"), include_str!(concat!("../../templates/mail/", $name, ".html"))),
        )*]
    };
}

/// Which mail to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailKind {
    Welcome,
    VerifyEmail,
    EmailChanged,
    PasswordReset,
}

impl MailKind {
    fn template(self) -> &'static str {
        match self {
            MailKind::Welcome => "welcome",
            MailKind::VerifyEmail => "verify_email",
            MailKind::EmailChanged => "email_changed",
            MailKind::PasswordReset => "password_reset",
        }
    }
}

/// Parsed once at start-up; rendering is cheap.
pub struct MailTemplates {
    environment: Environment<'static>,
}

impl MailTemplates {
    pub fn new() -> anyhow::Result<Self> {
        let mut environment = Environment::new();
        for (name, source) in
            mail_templates!["welcome", "verify_email", "email_changed", "password_reset"]
        {
            environment
                .add_template(name, source)
                .with_context(|| format!("mail template {name}"))?;
        }
        Ok(Self { environment })
    }

    /// The mail `kind` to `to`; `context` fills the templates (`username`,
    /// and for links `link` and `valid_for`).
    pub fn render(&self, kind: MailKind, to: &str, context: Value) -> anyhow::Result<Mail> {
        let part = |suffix: &str| -> anyhow::Result<String> {
            let name = format!("{}{suffix}", kind.template());
            self.environment
                .get_template(&name)
                .and_then(|template| template.render(context.clone()))
                .with_context(|| format!("rendering the mail template {name}"))
        };
        Ok(Mail {
            to: to.to_string(),
            subject: part(".subject.txt")?.trim().to_string(),
            text: part(".txt")?,
            html: part(".html")?,
        })
    }
}

/// "24 hours", "30 minutes", "90 seconds": how long a link works, for people.
pub fn describe_duration(seconds: u64) -> String {
    let (amount, unit) = if seconds.is_multiple_of(3600) {
        (seconds / 3600, "hour")
    } else if seconds.is_multiple_of(60) {
        (seconds / 60, "minute")
    } else {
        (seconds, "second")
    };
    if amount == 1 {
        format!("1 {unit}")
    } else {
        format!("{amount} {unit}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::context;

    #[test]
    fn every_mail_has_a_subject_a_text_and_an_html_part_with_the_link() {
        let templates = MailTemplates::new().unwrap();
        let link = "http://localhost:5173/verify-email?token=abc";
        let safe_link = Value::from_safe_string(link.to_string());
        for kind in [
            MailKind::Welcome,
            MailKind::VerifyEmail,
            MailKind::PasswordReset,
        ] {
            let mail = templates
                .render(
                    kind,
                    "a@example.com",
                    context! { username => "alice", link => safe_link.clone(), valid_for => "1 hour" },
                )
                .unwrap();
            assert!(!mail.subject.is_empty() && !mail.subject.contains('\n'));
            assert!(mail.text.contains(link), "{kind:?} text");
            assert!(
                mail.html.contains(&format!("href=\"{link}\"")),
                "{kind:?} html"
            );
            assert!(mail.text.contains("alice") && mail.html.contains("alice"));
        }
    }

    #[test]
    fn html_parts_escape_what_they_insert() {
        let templates = MailTemplates::new().unwrap();
        let mail = templates
            .render(
                MailKind::EmailChanged,
                "a@example.com",
                context! { username => "<b>x" },
            )
            .unwrap();
        assert!(mail.html.contains("&lt;b&gt;x") && !mail.html.contains("<b>x"));
        assert!(mail.text.contains("<b>x"));
    }

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(describe_duration(86400), "24 hours");
        assert_eq!(describe_duration(1800), "30 minutes");
        assert_eq!(describe_duration(3600), "1 hour");
        assert_eq!(describe_duration(90), "90 seconds");
    }
}
