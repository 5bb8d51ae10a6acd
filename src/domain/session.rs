//! Session ids and the opaque refresh tokens that name them.

/// A session's id: 32 lower-case hex digits (a random UUID). Also the `sid`
/// claim of every access token issued for the session.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionId(String);

const ID_LENGTH: usize = 32;

impl SessionId {
    pub fn new_random() -> Self {
        Self(uuid::Uuid::new_v4().simple().to_string())
    }

    /// An id in its one canonical form; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        (text.len() == ID_LENGTH && text.bytes().all(is_lower_hex)).then(|| Self(text.to_string()))
    }

    /// An id read back from storage, where only well-formed ids are written.
    pub fn from_stored(id: String) -> Self {
        Self(id)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_lower_hex(byte: u8) -> bool {
    byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte)
}

/// A refresh token as the client holds it: `<session id>.<64 hex digits>`,
/// 256 random (or derived) bits after the session id. Only its hash is stored.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshToken {
    session: SessionId,
    text: String,
}

const SECRET_LENGTH: usize = 64;

impl RefreshToken {
    /// A token of `session` carrying `secret` (32 bytes).
    pub fn new(session: &SessionId, secret: &[u8; 32]) -> Self {
        let mut text = String::with_capacity(ID_LENGTH + 1 + SECRET_LENGTH);
        text.push_str(session.as_str());
        text.push('.');
        for byte in secret {
            text.push_str(&format!("{byte:02x}"));
        }
        Self {
            session: session.clone(),
            text,
        }
    }

    /// A token in its one well-formed shape; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        let (session, secret) = text.split_once('.')?;
        let session = SessionId::parse(session)?;
        (secret.len() == SECRET_LENGTH && secret.bytes().all(is_lower_hex)).then(|| Self {
            session,
            text: text.to_string(),
        })
    }

    pub fn session(&self) -> &SessionId {
        &self.session
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// Never printed: a token in a log line is a stolen session.
impl std::fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RefreshToken({}.…)", self.session)
    }
}

/// A live session, as its user sees it.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub id: SessionId,
    pub created_at: time::OffsetDateTime,
    pub last_used_at: time::OffsetDateTime,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refresh_token_round_trips_through_its_text() {
        let session = SessionId::new_random();
        let token = RefreshToken::new(&session, &[0xab; 32]);
        let parsed = RefreshToken::parse(token.as_str()).expect("parses");
        assert_eq!(parsed.session(), &session);
        assert_eq!(parsed.as_str(), token.as_str());
        assert!(
            !format!("{token:?}").contains("abab"),
            "the secret is never printed"
        );
    }

    #[test]
    fn malformed_refresh_tokens_and_ids_are_refused() {
        let good = RefreshToken::new(&SessionId::new_random(), &[1; 32]);
        let text = good.as_str();
        assert!(
            RefreshToken::parse(&text[..text.len() - 1]).is_none(),
            "truncated"
        );
        assert!(
            RefreshToken::parse(&text.to_uppercase()).is_none(),
            "not canonical"
        );
        assert!(
            RefreshToken::parse(&text.replace('.', "")).is_none(),
            "no separator"
        );
        assert!(RefreshToken::parse("").is_none());
        assert!(SessionId::parse("../../etc").is_none());
        assert!(SessionId::parse(&"a".repeat(33)).is_none());
    }
}
