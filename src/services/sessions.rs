//! Sessions: recorded in SQL (the truth: a Redis restarted empty loses no
//! session), and mirrored in Redis as what an access-token check reads in
//! one round trip. Here they start, are listed and end; `principal` checks
//! an access token's session, `refresh` rotates refresh tokens.

mod principal;
mod refresh;

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use serde_json::json;

use super::audit;
use super::reads::NearReads;
use super::refresh_tokens::RefreshSecrets;
use super::retry::after_commit;
use super::tokens::TokenIssuer;
use crate::domain::{RefreshToken, Role, SessionId, SessionRecord, UserId};
use crate::error::AppError;
use crate::repositories::redis::SessionStore;
use crate::repositories::sql::{NewAuditEvent, NewSession, SessionRepository};
pub use principal::{Admin, Principal};

#[derive(Debug, Clone)]
pub struct SessionSettings {
    pub refresh_ttl: Duration,
    pub reuse_grace: Duration,
    /// A new login ends every other session of the user.
    pub single_session: bool,
    /// Live sessions per user at most (when not single).
    pub max_sessions: u32,
}

/// Where a login or refresh comes from, as the session list shows it.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub user_agent: Option<String>,
    pub ip: Option<String>,
}

/// An access token and the refresh token that renews it.
pub struct Tokens {
    pub access_token: String,
    pub expires_in: u64,
    pub refresh_token: RefreshToken,
    pub refresh_expires_in: u64,
}

/// A live session, as its user sees it.
pub struct SessionView {
    pub record: SessionRecord,
    pub current: bool,
}

#[derive(Clone)]
pub struct SessionService {
    repository: Arc<dyn SessionRepository>,
    store: SessionStore,
    reads: NearReads,
    tokens: Arc<TokenIssuer>,
    secrets: Arc<RefreshSecrets>,
    settings: SessionSettings,
}

fn now_ms(now: OffsetDateTime) -> i64 {
    (now.unix_timestamp_nanos() / 1_000_000) as i64
}

/// Longest a user agent is kept.
const USER_AGENT_LIMIT: usize = 256;

impl SessionService {
    pub fn new(
        repository: Arc<dyn SessionRepository>,
        store: SessionStore,
        reads: NearReads,
        tokens: Arc<TokenIssuer>,
        secrets: Arc<RefreshSecrets>,
        settings: SessionSettings,
    ) -> Self {
        Self {
            repository,
            store,
            reads,
            tokens,
            secrets,
            settings,
        }
    }

    /// Starts a session for a user whose password hash was just verified.
    /// `None` if the password changed (or the user went) meanwhile.
    pub async fn start(
        &self,
        user: UserId,
        role: Role,
        password_hash: &str,
        client: &ClientInfo,
    ) -> Result<Option<Tokens>, AppError> {
        let id = SessionId::new_random();
        let refresh = self.secrets.first(&id).map_err(AppError::Internal)?;
        let now = OffsetDateTime::now_utc();
        let expires_at_ms = now_ms(now) + self.settings.refresh_ttl.as_millis() as i64;
        let user_agent = client.user_agent.as_deref().map(truncate_user_agent);
        let session = NewSession {
            id: &id,
            user,
            refresh_hash: &RefreshSecrets::hash(&refresh),
            now,
            expires_at_ms,
            user_agent,
            ip: client.ip.as_deref(),
        };
        let keep_others = if self.settings.single_session {
            0
        } else {
            self.settings.max_sessions.saturating_sub(1)
        };
        let event = audit::event(
            "auth.login",
            Some(user),
            Some(user),
            json!({"session": id.as_str()}),
        );
        // Redis first: with Redis down the login is 503 before SQL ends the
        // user's other sessions or records a login. Should SQL fail next,
        // the live entry names a session nobody holds a token of, and
        // expires.
        self.store.activate(&id, user, self.mirror_ttl()).await?;
        let Some(ended) = self
            .repository
            .start(session, password_hash, keep_others, &event)
            .await?
        else {
            return Ok(None);
        };
        self.end_in_redis(ended).await;
        self.issue(user, role, &id, refresh, expires_at_ms, now)
            .map(Some)
    }

    /// The caller's live sessions, newest first.
    pub async fn list(&self, caller: &Principal) -> Result<Vec<SessionView>, AppError> {
        let now = now_ms(OffsetDateTime::now_utc());
        let records = self.repository.list_live(caller.user, now).await?;
        Ok(records
            .into_iter()
            .map(|record| SessionView {
                current: record.id == caller.session,
                record,
            })
            .collect())
    }

    /// Ends one of `user`'s sessions at once; false if it was not theirs or
    /// not live.
    /// Records `event` with it.
    pub async fn end(
        &self,
        user: UserId,
        id: &SessionId,
        event: Option<NewAuditEvent>,
    ) -> Result<bool, AppError> {
        let now = now_ms(OffsetDateTime::now_utc());
        if !self.repository.end(id, user, now, event.as_ref()).await? {
            return Ok(false);
        }
        self.end_in_redis(vec![id.clone()]).await;
        Ok(true)
    }

    /// Ends every session of the user at once.
    /// Records `event` with it.
    pub async fn end_all(
        &self,
        user: UserId,
        event: Option<NewAuditEvent>,
    ) -> Result<(), AppError> {
        let now = now_ms(OffsetDateTime::now_utc());
        let ended = self.repository.end_all(user, now, event.as_ref()).await?;
        self.end_in_redis(ended).await;
        Ok(())
    }

    /// Tombstones for sessions SQL has ended (here, or in the transaction
    /// of a password change). SQL already refuses their refresh tokens;
    /// their access tokens stop with the tombstone, which is retried in the
    /// background if Redis fails now.
    pub async fn end_in_redis(&self, ended: Vec<SessionId>) {
        if ended.is_empty() {
            return;
        }
        let (store, reads, ttl) = (self.store.clone(), self.reads.clone(), self.mirror_ttl());
        after_commit("ending sessions", move || {
            let (store, reads, ended) = (store.clone(), reads.clone(), ended.clone());
            async move {
                let result = store.end(&ended, ttl).await;
                for id in &ended {
                    reads.forget(&store.key(id));
                }
                result
            }
        })
        .await;
    }

    /// How long a session's Redis key lives after each login or refresh:
    /// as long as the access token then issued can, plus the clock skew.
    fn mirror_ttl(&self) -> Duration {
        self.tokens.lifetime() + Duration::from_secs(10)
    }

    fn issue(
        &self,
        user: UserId,
        role: Role,
        id: &SessionId,
        refresh: RefreshToken,
        expires_at_ms: i64,
        now: OffsetDateTime,
    ) -> Result<Tokens, AppError> {
        let access = self
            .tokens
            .issue(user, role, id)
            .map_err(AppError::Internal)?;
        let refresh_expires_in = ((expires_at_ms - now_ms(now)).max(0) / 1000) as u64;
        Ok(Tokens {
            access_token: access.token,
            expires_in: access.lifetime.as_secs(),
            refresh_token: refresh,
            refresh_expires_in,
        })
    }
}

fn truncate_user_agent(agent: &str) -> &str {
    match agent.char_indices().nth(USER_AGENT_LIMIT) {
        Some((at, _)) => &agent[..at],
        None => agent,
    }
}
