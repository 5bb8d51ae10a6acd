//! Users: cache-aside reads, updates and deletes that invalidate after the
//! commit, and who may do what.

mod update;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::audit;
use super::cache::{
    CacheAside, CacheStatus, Cacheable, DELETED_VERSION, EntryRead, Representation,
};
use super::locks::LockService;
use super::reads::NearReads;
use super::retry::after_commit;
use super::sessions::{Admin, Principal, SessionService};
use super::tokens::TokenSubject;
use crate::domain::{PublicUser, Role, User, UserId};
use crate::error::AppError;
use crate::repositories::redis::{CachedEntry, Keys};
use crate::repositories::sql::{UserFilter, UserRepository};
pub use update::{IfMatch, UserPatch};

/// Cached as both views: what the user and admins see, and what anyone
/// else sees (`PublicUser`), so either is served as stored.
impl Cacheable for User {
    /// The private `User` and the `PublicUser`, in one entry.
    const VIEWS: usize = 2;

    fn version(&self) -> i64 {
        self.version
    }

    fn cached_form(&self) -> Result<Representation, serde_json::Error> {
        Representation::pair(self, &PublicUser::from(self))
    }
}

/// Which view of a cached user `caller` may see.
fn view_for(
    caller: &Principal,
    id: UserId,
    user: Representation,
) -> Result<Representation, AppError> {
    let private = caller.user == id || caller.is_admin();
    user.part(if private { 0 } else { 1 }).ok_or_else(|| {
        AppError::Internal(anyhow::anyhow!("cached user {id} is not a pair of views"))
    })
}

/// Which users to list: a page of at most `limit`, after `after`, of
/// those matching every filter given.
#[derive(Debug, Clone, Default)]
pub struct UserQuery {
    pub limit: u32,
    pub after: Option<UserId>,
    /// A case-insensitive substring of the username or e-mail.
    pub text: Option<String>,
    pub role: Option<Role>,
    pub disabled: Option<bool>,
}

#[derive(Debug)]
pub struct UserPage {
    pub items: Vec<User>,
    /// The last id of this page when another follows.
    pub next_after_id: Option<UserId>,
}

pub const DEFAULT_PAGE_SIZE: u32 = 20;

/// A Redis answer slower than this marks Redis as slow for the request.
const SLOW_REDIS: Duration = Duration::from_millis(100);
pub const MAX_PAGE_SIZE: u32 = 100;

#[derive(Clone)]
pub struct UserService {
    users: Arc<dyn UserRepository>,
    cache: CacheAside,
    keys: Keys,
    sessions: SessionService,
    reads: NearReads,
    locks: LockService,
}

impl UserService {
    pub fn new(
        users: Arc<dyn UserRepository>,
        cache: CacheAside,
        keys: Keys,
        sessions: SessionService,
        reads: NearReads,
        locks: LockService,
    ) -> Self {
        Self {
            users,
            cache,
            keys,
            sessions,
            reads,
            locks,
        }
    }

    /// The hot read: checks the caller's session and reads the cached user
    /// in one Redis round trip, then falls back to SQL on a miss. Without
    /// Redis the session cannot be checked: 503, fail closed.
    pub async fn get_as(
        &self,
        caller: TokenSubject,
        id: UserId,
    ) -> Result<(Representation, CacheStatus), AppError> {
        let key = self.keys.user(id);
        let started = Instant::now();
        let (session, cached) = self
            .reads
            .get_pair(
                &self.sessions.session_key(&caller),
                key.as_str(),
                CachedEntry::holds_value,
            )
            .await?;
        let redis_is_slow = started.elapsed() > SLOW_REDIS;
        let caller = SessionService::accept(caller, session.as_deref())?;
        let entry = cached.as_deref().and_then(CachedEntry::decode);
        let hit = entry.as_ref().is_some_and(|entry| entry.value.is_some());
        let cached = if !hit && redis_is_slow {
            EntryRead::SlowMiss
        } else {
            EntryRead::Answered(entry)
        };
        let (user, status) = self
            .cache
            .resolve_representation(&key, cached, async || {
                self.users.find(id).await?.ok_or(AppError::NotFound("user"))
            })
            .await?;
        Ok((view_for(&caller, id, user)?, status))
    }

    #[tracing::instrument(skip_all, fields(actor = %actor.user, user = %id))]
    pub async fn delete(&self, actor: &Principal, id: UserId) -> Result<(), AppError> {
        actor.require_self_or_admin(id)?;
        let event = audit::event("user.deleted", Some(actor.user), Some(id), json!({}));
        if !self.users.delete(id, &event).await? {
            return Err(AppError::NotFound("user"));
        }
        self.invalidate(id, DELETED_VERSION).await;
        self.end_sessions(id).await;
        tracing::info!("user deleted");
        Ok(())
    }

    pub async fn list(&self, _admin: Admin<'_>, query: UserQuery) -> Result<UserPage, AppError> {
        let limit = query.limit;
        let filter = UserFilter {
            text: query.text.as_deref(),
            role: query.role,
            disabled: query.disabled,
        };
        // One extra row tells whether another page follows.
        let mut items = self.users.list(query.after, limit + 1, &filter).await?;
        let next_after_id = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|user| user.id)
        } else {
            None
        };
        Ok(UserPage {
            items,
            next_after_id,
        })
    }

    /// Invalidates the cached user after a committed change. Redis trouble
    /// must not undo or fail the change, so a failed attempt is retried in
    /// the background until Redis answers.
    pub async fn invalidate(&self, id: UserId, version: i64) {
        let cache = self.cache.clone();
        let key = self.keys.user(id);
        after_commit("cache invalidation", move || {
            let (cache, key) = (cache.clone(), key.clone());
            async move { cache.invalidate(&key, version).await }
        })
        .await;
    }

    /// Ends every session of the user. The change is committed: a failure
    /// here is logged, and SQL already refuses the sessions' refresh tokens.
    async fn end_sessions(&self, id: UserId) {
        if let Err(error) = self.sessions.end_all(id, None).await {
            tracing::error!(error = ?error, user = %id, "ending sessions after a change failed");
        }
    }
}
