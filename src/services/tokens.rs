//! JWT access tokens: HS256 only, keys built once.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::domain::{Role, SessionId, UserId};

/// Clock skew allowed on `exp` and `nbf`.
const LEEWAY_SECONDS: u64 = 5;

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub exp: u64,
    pub iat: u64,
    pub jti: String,
    /// The session the token belongs to; it is valid only while that is live.
    pub sid: String,
    pub role: Role,
}

pub struct IssuedToken {
    pub token: String,
    pub lifetime: Duration,
}

/// What a well-signed, unexpired token says. Whether its session is still
/// live is for the session service to tell: only that makes a `Principal`.
#[derive(Debug, Clone)]
pub struct TokenSubject {
    pub user: UserId,
    pub role: Role,
    pub session: SessionId,
}

#[derive(Clone)]
pub struct TokenIssuer {
    /// Tells this issuer's verified tokens from another's (tests run
    /// several, with other keys, in one process).
    id: u64,
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    lifetime: Duration,
}

impl TokenIssuer {
    pub fn new(secret: &SecretString, lifetime: Duration) -> Self {
        let secret = secret.expose_secret().as_bytes();
        // Pinned to HS256: a token naming any other algorithm (`none`
        // included) is rejected before its signature is looked at.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub", "iat"]);
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            lifetime,
        }
    }

    /// How long issued tokens live.
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    pub fn issue(
        &self,
        user: UserId,
        role: Role,
        session: &SessionId,
    ) -> anyhow::Result<IssuedToken> {
        let now = jsonwebtoken::get_current_timestamp();
        let claims = Claims {
            sub: user.to_string(),
            iat: now,
            exp: now + self.lifetime.as_secs(),
            jti: uuid::Uuid::new_v4().simple().to_string(),
            sid: session.to_string(),
            role,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?;
        Ok(IssuedToken {
            token,
            lifetime: self.lifetime,
        })
    }

    /// The subject of a well-signed, unexpired token; `None` for anything else.
    pub fn verify(&self, token: &str) -> Option<TokenSubject> {
        let now = jsonwebtoken::get_current_timestamp();
        if let Some(subject) =
            VERIFIED.with_borrow_mut(|verified| verified.get(self.id, token, now))
        {
            return Some(subject);
        }
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .ok()?
            .claims;
        // Issued in the future (beyond the clock skew): not one of ours.
        if claims.iat > now + LEEWAY_SECONDS {
            return None;
        }
        let user = claims.sub.parse().ok().map(UserId)?;
        let subject = TokenSubject {
            user,
            role: claims.role,
            session: SessionId::parse(&claims.sid)?,
        };
        VERIFIED.with_borrow_mut(|verified| {
            verified.insert(self.id, token, claims.exp, &subject);
        });
        Some(subject)
    }
}

/// Tokens whose signature this thread has checked, with what they say: the
/// same bytes under the same key always verify the same way, so only the
/// expiry needs checking again. (Whether the token is still the current
/// session is checked on every request, elsewhere.)
#[derive(Default)]
struct VerifiedTokens {
    /// By issuer, then by token: `(exp, subject)`.
    entries: HashMap<u64, HashMap<Box<str>, (u64, TokenSubject)>>,
    count: usize,
}

/// Tokens remembered per thread at most; then the memory starts over.
const VERIFIED_PER_THREAD: usize = 4096;

thread_local! {
    static VERIFIED: RefCell<VerifiedTokens> = RefCell::default();
}

impl VerifiedTokens {
    fn get(&mut self, issuer: u64, token: &str, now: u64) -> Option<TokenSubject> {
        let tokens = self.entries.get_mut(&issuer)?;
        let (exp, subject) = tokens.get(token)?;
        // As jsonwebtoken does, with the same leeway: expired once
        // `exp < now - leeway`.
        if *exp + LEEWAY_SECONDS < now {
            tokens.remove(token);
            return None;
        }
        Some(subject.clone())
    }

    fn insert(&mut self, issuer: u64, token: &str, exp: u64, subject: &TokenSubject) {
        if self.count >= VERIFIED_PER_THREAD {
            self.entries.clear();
            self.count = 0;
        }
        self.count += 1;
        self.entries
            .entry(issuer)
            .or_default()
            .insert(Box::from(token), (exp, subject.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer(secret: &str) -> TokenIssuer {
        TokenIssuer::new(&secret.into(), Duration::from_secs(60))
    }

    fn session() -> SessionId {
        SessionId::parse("0123456789abcdef0123456789abcdef").unwrap()
    }

    #[test]
    fn an_issued_token_verifies_with_its_claims() {
        let issuer = issuer("a-secret-of-at-least-32-bytes-long!");
        let token = issuer.issue(UserId(7), Role::Admin, &session()).unwrap();
        let subject = issuer.verify(&token.token).unwrap();
        assert_eq!(subject.user, UserId(7));
        assert_eq!(subject.role, Role::Admin);
        assert_eq!(subject.session, session());
    }

    #[test]
    fn a_token_signed_with_another_key_is_rejected() {
        let token = issuer("one-secret-of-at-least-32-bytes-long")
            .issue(UserId(7), Role::User, &session())
            .unwrap();
        assert!(
            issuer("another-secret-of-at-least-32-bytes")
                .verify(&token.token)
                .is_none()
        );
    }

    #[test]
    fn a_remembered_token_still_expires() {
        let subject = TokenSubject {
            user: UserId(7),
            role: Role::User,
            session: session(),
        };
        let mut verified = VerifiedTokens::default();
        verified.insert(1, "token", 100, &subject);
        assert!(verified.get(1, "token", 100 + LEEWAY_SECONDS).is_some());
        assert!(verified.get(2, "token", 100).is_none(), "another issuer's");
        assert!(verified.get(1, "token", 101 + LEEWAY_SECONDS).is_none());
        assert!(
            verified.get(1, "token", 100).is_none(),
            "forgotten once expired"
        );
    }

    #[test]
    fn a_token_verified_once_verifies_again_and_a_forged_twin_does_not() {
        let issuer = issuer("a-secret-of-at-least-32-bytes-long!");
        let token = issuer
            .issue(UserId(7), Role::User, &session())
            .unwrap()
            .token;
        assert!(issuer.verify(&token).is_some());
        assert!(issuer.verify(&token).is_some());
        let mut forged = token.clone();
        forged.pop();
        assert!(issuer.verify(&forged).is_none());
    }

    #[test]
    fn a_token_issued_in_the_future_is_rejected() {
        let issuer = issuer("a-secret-of-at-least-32-bytes-long!");
        let now = jsonwebtoken::get_current_timestamp();
        let claims = Claims {
            sub: "7".into(),
            iat: now + 3600,
            exp: now + 7200,
            jti: "j".into(),
            sid: session().to_string(),
            role: Role::User,
        };
        let header = Header::new(Algorithm::HS256);
        let token = jsonwebtoken::encode(&header, &claims, &issuer.encoding).unwrap();
        assert!(issuer.verify(&token).is_none());
    }

    #[test]
    fn an_unsigned_token_is_rejected() {
        // {"alg":"none"} . {"sub":"7","exp":9999999999,"iat":0,"jti":"x","role":"admin"} .
        let token = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiI3IiwiZXhwIjo5OTk5OTk5OTk5LCJpYXQiOjAsImp0aSI6IngiLCJyb2xlIjoiYWRtaW4ifQ.";
        assert!(
            issuer("a-secret-of-at-least-32-bytes-long!")
                .verify(token)
                .is_none()
        );
    }
}
