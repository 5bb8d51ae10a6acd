//! JWT access tokens: HS256 only, keys built once.

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::domain::{Role, UserId};

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
        validation.leeway = 5;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
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
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .ok()?
            .claims;
        let user = claims.sub.parse().ok().map(UserId)?;
        (!claims.jti.is_empty()).then_some(TokenSubject {
            user,
            role: claims.role,
            jti: claims.jti,
        })
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
