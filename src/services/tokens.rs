//! JWT access tokens: HS256 only, keys built once.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::domain::{Role, UserId};

/// Clock skew allowed on `exp` and `nbf`.
const LEEWAY_SECONDS: u64 = 5;

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub exp: u64,
    pub iat: u64,
    pub jti: String,
    pub role: Role,
}

pub struct IssuedToken {
    pub token: String,
    pub jti: String,
    pub lifetime: Duration,
}

/// What a valid token says.
#[derive(Debug, Clone)]
pub struct TokenSubject {
    pub user: UserId,
    pub role: Role,
    pub jti: String,
}

impl TokenSubject {
    /// A token is valid only while its `jti` is the user's current session.
    pub fn is_current(&self, session: Option<&str>) -> bool {
        session == Some(self.jti.as_str())
    }
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
        validation.set_required_spec_claims(&["exp", "sub"]);
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            lifetime,
        }
    }

    pub fn issue(&self, user: UserId, role: Role) -> anyhow::Result<IssuedToken> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp().max(0) as u64;
        let jti = uuid::Uuid::new_v4().simple().to_string();
        let claims = Claims {
            sub: user.to_string(),
            iat: now,
            exp: now + self.lifetime.as_secs(),
            jti: jti.clone(),
            role,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?;
        Ok(IssuedToken {
            token,
            jti,
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
        let user = claims.sub.parse().ok().map(UserId)?;
        let subject = (!claims.jti.is_empty()).then_some(TokenSubject {
            user,
            role: claims.role,
            jti: claims.jti,
        })?;
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

    #[test]
    fn an_issued_token_verifies_with_its_claims() {
        let issuer = issuer("a-secret-of-at-least-32-bytes-long!");
        let token = issuer.issue(UserId(7), Role::Admin).unwrap();
        let subject = issuer.verify(&token.token).unwrap();
        assert_eq!(subject.user, UserId(7));
        assert_eq!(subject.role, Role::Admin);
        assert_eq!(subject.jti, token.jti);
    }

    #[test]
    fn a_token_signed_with_another_key_is_rejected() {
        let token = issuer("one-secret-of-at-least-32-bytes-long")
            .issue(UserId(7), Role::User)
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
            jti: "j".into(),
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
        let token = issuer.issue(UserId(7), Role::User).unwrap().token;
        assert!(issuer.verify(&token).is_some());
        assert!(issuer.verify(&token).is_some());
        let mut forged = token.clone();
        forged.pop();
        assert!(issuer.verify(&forged).is_none());
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
