//! Mails as a person reads them: the `.eml` files the file transport
//! writes, parsed (headers, multipart/alternative, quoted-printable), and
//! the links in them.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use user_api::config::{MailTransport, Settings};

use crate::helpers::TestApp;

/// Sends this app's mail to a folder of its own.
pub fn mail_to_files(settings: &mut Settings) {
    let dir = std::env::temp_dir().join(format!("user-api-mail-{}", uuid::Uuid::new_v4().simple()));
    settings.mail.transport = MailTransport::File;
    settings.mail.file_dir = dir.display().to_string();
}

#[derive(Debug, Clone)]
pub struct ReadMail {
    pub to: String,
    pub subject: String,
    pub content_type: String,
    pub text: String,
    pub html: String,
}

impl ReadMail {
    /// The token of the first `{link_base_url}/{page}?token=T` link in the
    /// plain-text part, checked to be in the HTML part too.
    pub fn token(&self, app: &TestApp, page: &str) -> String {
        let prefix = format!("{}/{page}?token=", app.settings.mail.link_base_url);
        let start = self
            .text
            .find(&prefix)
            .unwrap_or_else(|| panic!("no {prefix} link in: {}", self.text))
            + prefix.len();
        let token: String = self.text[start..]
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .collect();
        assert!(
            self.html.contains(&format!("href=\"{prefix}{token}\"")),
            "the HTML part has the same link: {}",
            self.html
        );
        token
    }
}

/// Every mail the app has written so far.
pub fn mails(app: &TestApp) -> Vec<ReadMail> {
    let dir = PathBuf::from(&app.settings.mail.file_dir);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
        .map(|path| {
            (
                path.metadata().and_then(|m| m.modified()).expect("mtime"),
                path,
            )
        })
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|(_, path)| parse(&std::fs::read_to_string(&path).expect("a mail file")))
        .collect()
}

/// The mails to `to` whose subject contains `subject`, once there are
/// `count` of them (panics after 15 s).
pub async fn wait_for(app: &TestApp, to: &str, subject: &str, count: usize) -> Vec<ReadMail> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let found: Vec<ReadMail> = mails(app)
            .into_iter()
            .filter(|mail| mail.to == to && mail.subject.contains(subject))
            .collect();
        if found.len() >= count {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {count} mails to {to} about {subject:?}; all: {:?}",
            found.len(),
            mails(app)
                .iter()
                .map(|m| (&m.to, &m.subject))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Headers, unfolded, and the body.
fn split(message: &str) -> (Vec<(String, String)>, String) {
    let message = message.replace("\r\n", "\n");
    let (head, body) = message.split_once("\n\n").unwrap_or((&message, ""));
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = headers.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    (headers, body.to_string())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers
        .iter()
        .find(|(key, _)| key == name)
        .map_or("", |(_, value)| value.as_str())
}

fn decode(headers: &[(String, String)], body: &str) -> String {
    match header(headers, "content-transfer-encoding")
        .to_ascii_lowercase()
        .as_str()
    {
        "quoted-printable" => quoted_printable(body),
        "" | "7bit" | "8bit" => body.to_string(),
        other => panic!("unexpected transfer encoding {other}"),
    }
}

fn quoted_printable(body: &str) -> String {
    let joined = body.replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 3 <= bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(byte) = hex.and_then(|hex| u8::from_str_radix(hex, 16).ok()) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).expect("UTF-8 text")
}

fn parse(message: &str) -> ReadMail {
    let (headers, body) = split(message);
    let content_type = header(&headers, "content-type").to_string();
    let boundary = content_type
        .split(';')
        .find_map(|param| param.trim().strip_prefix("boundary="))
        .map(|value| value.trim_matches('"').to_string());
    let (mut text, mut html) = (String::new(), String::new());
    match boundary {
        Some(boundary) => {
            for part in body.split(&format!("--{boundary}")).skip(1) {
                if part.starts_with("--") {
                    break;
                }
                let (part_headers, part_body) = split(part.trim_start_matches('\n'));
                let decoded = decode(&part_headers, &part_body);
                let kind = header(&part_headers, "content-type").to_ascii_lowercase();
                if kind.starts_with("text/plain") {
                    text = decoded;
                } else if kind.starts_with("text/html") {
                    html = decoded;
                }
            }
        }
        None => text = decode(&headers, &body),
    }
    ReadMail {
        to: header(&headers, "to").trim_matches(['<', '>']).to_string(),
        subject: header(&headers, "subject").to_string(),
        content_type,
        text,
        html,
    }
}
