//! The session repository: one row per login, the refresh token's hash and
//! the one it replaced. Here its contract; the SQL (the same text on both
//! backends, as for users) is in `queries`.

mod queries;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{NewAuditEvent, SqlError};
use crate::domain::{Role, SessionId, SessionRecord, UserId};

pub(super) use queries::{PgSessionRepository, SqliteSessionRepository};

/// Ends every live session of user `$1` at `$2` (ms) and names them; run
/// inside the transaction of a change that must end them (a new password),
/// so that the change never commits with the old sessions still alive.
pub(super) const END_ALL: &str =
    "UPDATE sessions SET ended_at_ms = $2 WHERE user_id = $1 AND ended_at_ms IS NULL RETURNING id";

pub(super) fn session_ids(ids: Vec<String>) -> Vec<SessionId> {
    ids.into_iter().map(SessionId::from_stored).collect()
}

pub struct NewSession<'a> {
    pub id: &'a SessionId,
    pub user: UserId,
    pub refresh_hash: &'a str,
    pub now: OffsetDateTime,
    pub expires_at_ms: i64,
    pub user_agent: Option<&'a str>,
    pub ip: Option<&'a str>,
}

/// What a refresh needs to know about a session.
pub struct SessionState {
    pub user: UserId,
    /// The user's role now (for the new access token).
    pub role: Role,
    pub refresh_hash: String,
    pub previous_refresh_hash: Option<String>,
    pub previous_spent_at_ms: Option<i64>,
    pub expires_at_ms: i64,
    /// Ended, or its account disabled.
    pub ended: bool,
}

#[async_trait]
pub trait SessionRepository: Send + Sync {
    /// Records a new session if the user still has `password_hash` and is
    /// not disabled (a change that committed meanwhile wins), and ends
    /// the user's other live sessions but the newest `keep_others`, all in
    /// one transaction that holds the user's row. Returns the ids it ended,
    /// or `None` when the user or password changed.
    async fn start(
        &self,
        session: NewSession<'_>,
        password_hash: &str,
        keep_others: u32,
        event: &NewAuditEvent,
    ) -> Result<Option<Vec<SessionId>>, SqlError>;

    /// The session with its user's role; `None` if either is gone.
    async fn find(&self, id: &SessionId) -> Result<Option<SessionState>, SqlError>;

    /// Replaces the refresh token's hash if `presented_hash` is still the
    /// current one of a live session; false when another refresh came first.
    async fn rotate(
        &self,
        id: &SessionId,
        presented_hash: &str,
        new_hash: &str,
        now: OffsetDateTime,
    ) -> Result<bool, SqlError>;

    /// Records a use of the session (a refresh within the reuse grace).
    async fn touch(&self, id: &SessionId, now: OffsetDateTime) -> Result<(), SqlError>;

    /// Ends one live session, if it is `user`'s, recording `event` with it;
    /// false when there was none.
    async fn end(
        &self,
        id: &SessionId,
        user: UserId,
        now_ms: i64,
        event: Option<&NewAuditEvent>,
    ) -> Result<bool, SqlError>;

    /// Ends every live session of the user, recording `event` with it;
    /// returns their ids.
    async fn end_all(
        &self,
        user: UserId,
        now_ms: i64,
        event: Option<&NewAuditEvent>,
    ) -> Result<Vec<SessionId>, SqlError>;

    /// The user's sessions that are neither ended nor expired, newest first.
    async fn list_live(&self, user: UserId, now_ms: i64) -> Result<Vec<SessionRecord>, SqlError>;

    /// Deletes sessions that ended or expired before `before_ms`.
    async fn prune(&self, before_ms: i64) -> Result<u64, SqlError>;
}
