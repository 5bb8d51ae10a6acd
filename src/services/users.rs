//! Users: cache-aside reads, updates and deletes that invalidate after the
//! commit, and who may do what.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use super::audit;
use super::cache::{CacheAside, CacheStatus, Cacheable, DELETED_VERSION, Representation};
use super::locks::LockService;
use super::reads::NearReads;
use super::retry::after_commit;
use super::sessions::{Principal, SessionService};
use super::tokens::TokenSubject;
use crate::domain::{Email, Job, PublicUser, Role, Task, User, UserId, Username};
use crate::error::{AppError, FieldError};
use crate::repositories::redis::{CachedEntry, Keys, RedisError};
use crate::repositories::sql::{Fenced, NewAuditEvent, UserChanges, UserFilter, UserRepository};

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

/// The audit events of an update: `user.updated` naming the fields that
/// change, and `user.disabled` or `user.enabled` when the state changes
/// (so that filtering by either finds it).
fn change_events(
    actor: Option<UserId>,
    current: &User,
    changes: &UserChanges<'_>,
) -> Vec<NewAuditEvent> {
    let mut fields = Vec::new();
    if changes
        .username
        .is_some_and(|name| name != current.username)
    {
        fields.push("username");
    }
    if changes.email.is_some_and(|email| email != current.email) {
        fields.push("email");
    }
    if changes.role.is_some_and(|role| role != current.role) {
        fields.push("role");
    }
    let mut events = Vec::new();
    if !fields.is_empty() {
        let details = json!({ "fields": fields });
        events.push(audit::event(
            "user.updated",
            actor,
            Some(current.id),
            details,
        ));
    }
    match changes.disabled {
        Some(disabled) if disabled != current.disabled => {
            let action = if disabled {
                "user.disabled"
            } else {
                "user.enabled"
            };
            events.push(audit::event(action, actor, Some(current.id), json!({})));
        }
        _ => {}
    }
    events
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

/// Fields to change; absent ones stay as they are.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(example = json!({"email": "alice@example.org"}))]
#[serde(deny_unknown_fields)]
pub struct UserUpdate {
    #[schema(min_length = 3, max_length = 32, pattern = "^[A-Za-z0-9_.-]{3,32}$")]
    pub username: Option<String>,
    #[schema(format = Email)]
    pub email: Option<String>,
    /// Admins only.
    pub role: Option<Role>,
    /// Admins only: a disabled account cannot log in and its sessions end.
    pub disabled: Option<bool>,
}

/// An update's `If-Match`: apply it only while the user is still at one of
/// these versions (ETags, as `GET` sent them), or at any (`*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfMatch {
    Any,
    Tags(Vec<String>),
}

impl IfMatch {
    fn allows(&self, current: &User) -> Result<bool, AppError> {
        match self {
            IfMatch::Any => Ok(true),
            IfMatch::Tags(tags) => {
                let digest = Representation::of(current)
                    .map_err(|error| AppError::Internal(error.into()))?
                    .digest;
                Ok(tags.contains(&digest))
            }
        }
    }
}

/// Raw pagination parameters, checked here so errors name the parameter.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageRequest {
    /// 1 to 100, default 20.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100, example = 20)]
    pub limit: Option<String>,
    /// Return users with ids above this one (the previous page's `next_after_id`).
    #[param(value_type = Option<i64>, minimum = 0, example = 40)]
    pub after_id: Option<String>,
    /// Only users whose username or e-mail contains this (any case).
    #[param(max_length = 256)]
    pub q: Option<String>,
    /// Only users with this role.
    #[param(value_type = Option<Role>)]
    pub role: Option<String>,
    /// Only disabled (`true`) or enabled (`false`) users.
    #[param(value_type = Option<bool>)]
    pub disabled: Option<String>,
}

/// Longest search text.
const MAX_QUERY_LENGTH: usize = 256;

#[derive(Debug, Serialize, ToSchema)]
pub struct UserPage {
    pub items: Vec<User>,
    /// Pass as `after_id` for the next page; null on the last page.
    #[schema(value_type = Option<i64>, required = true)]
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
        // A miss on a slow Redis goes straight to SQL: the cache's extra
        // round trips (lease, second look, fill) would each cost as much.
        let cached = if !hit && redis_is_slow {
            Err(RedisError::Timeout(started.elapsed()))
        } else {
            Ok(entry)
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
    pub async fn update(
        &self,
        actor: &Principal,
        id: UserId,
        update: UserUpdate,
        if_match: Option<IfMatch>,
    ) -> Result<User, AppError> {
        actor.require_self_or_admin(id)?;
        if update.role.is_some() || update.disabled.is_some() {
            actor.require_admin()?;
        }
        let mut errors = Vec::new();
        let username = update.username.as_deref().map(Username::parse).transpose();
        let username = username.map_err(|e| errors.push(FieldError::new("username", e)));
        let email = update.email.as_deref().map(Email::parse).transpose();
        let email = email.map_err(|e| errors.push(FieldError::new("email", e)));
        let (Ok(username), Ok(email)) = (username, email) else {
            return Err(AppError::Validation(errors));
        };
        let changes = UserChanges {
            username: username.as_ref().map(Username::as_str),
            email: email.as_ref().map(Email::as_str),
            role: update.role,
            jobs: &[],
            disabled: update.disabled,
        };
        self.locked_update(Some(actor.user), id, changes, if_match)
            .await
    }

    /// Makes the user an admin (the `create-admin` command).
    pub async fn promote_to_admin(&self, id: UserId) -> Result<User, AppError> {
        let changes = UserChanges {
            role: Some(Role::Admin),
            ..UserChanges::default()
        };
        self.locked_update(None, id, changes, None).await
    }

    /// Applies the changes under the user's lock, so two updates of one user
    /// never interleave; a second one meanwhile gets 409 `update_in_progress`.
    /// After the commit the cached user is invalidated, and if the role
    /// changed (it is in the user's tokens) or the account was disabled,
    /// the user's sessions end.
    async fn locked_update(
        &self,
        actor: Option<UserId>,
        id: UserId,
        changes: UserChanges<'_>,
        if_match: Option<IfMatch>,
    ) -> Result<User, AppError> {
        self.locks
            .run_exclusive(
                self.keys.user_lock(id),
                AppError::UpdateInProgress,
                async |fence| {
                    let current = self
                        .users
                        .find(id)
                        .await?
                        .ok_or(AppError::NotFound("user"))?;
                    if let Some(if_match) = &if_match
                        && !if_match.allows(&current)?
                    {
                        return Err(AppError::PreconditionFailed);
                    }
                    let unchanged = changes.username.is_none_or(|name| name == current.username)
                        && changes.email.is_none_or(|email| email == current.email)
                        && changes.role.is_none_or(|role| role == current.role)
                        && changes
                            .disabled
                            .is_none_or(|disabled| disabled == current.disabled);
                    if unchanged {
                        return Ok(current);
                    }
                    let events = change_events(actor, &current, &changes);
                    let now = OffsetDateTime::now_utc();
                    let mails = address_change_mails(&current, changes.email, now);
                    let changes = UserChanges {
                        jobs: &mails,
                        ..changes
                    };
                    let updated = match self
                        .users
                        .update(id, changes, now, fence.0, &events)
                        .await?
                    {
                        Fenced::Applied(user) => user,
                        Fenced::Missing => return Err(AppError::NotFound("user")),
                        // Our lease ran out and a newer holder wrote first.
                        Fenced::Stale => {
                            return Err(AppError::UpdateInProgress(Duration::from_secs(1)));
                        }
                    };
                    self.invalidate(id, updated.version).await;
                    if updated.role != current.role || (updated.disabled && !current.disabled) {
                        self.end_sessions(id).await;
                    }
                    tracing::info!(user = %id, "user updated");
                    Ok(updated)
                },
            )
            .await
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

    pub async fn list(&self, actor: &Principal, page: PageRequest) -> Result<UserPage, AppError> {
        actor.require_admin()?;
        let mut errors = Vec::new();
        let limit = match page.limit.as_deref().map(str::parse::<u32>) {
            None => Some(DEFAULT_PAGE_SIZE),
            Some(Ok(limit)) if (1..=MAX_PAGE_SIZE).contains(&limit) => Some(limit),
            Some(_) => {
                errors.push(FieldError::new(
                    "limit",
                    "must be a whole number from 1 to 100",
                ));
                None
            }
        };
        let after = match page.after_id.as_deref().map(str::parse::<i64>) {
            None => Some(None),
            Some(Ok(id)) if id >= 0 => Some(Some(UserId(id))),
            Some(_) => {
                errors.push(FieldError::new(
                    "after_id",
                    "must be a non-negative whole number",
                ));
                None
            }
        };
        let text = page
            .q
            .as_deref()
            .map(str::trim)
            .filter(|text| !text.is_empty());
        if text.is_some_and(|text| text.chars().count() > MAX_QUERY_LENGTH) {
            errors.push(FieldError::new(
                "q",
                format!("must be at most {MAX_QUERY_LENGTH} characters"),
            ));
        }
        let role = match page.role.as_deref().map(Role::parse) {
            None => None,
            Some(Some(role)) => Some(role),
            Some(None) => {
                errors.push(FieldError::new("role", "must be user or admin"));
                None
            }
        };
        let disabled = match page.disabled.as_deref() {
            None => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(_) => {
                errors.push(FieldError::new("disabled", "must be true or false"));
                None
            }
        };
        let (Some(limit), Some(after), true) = (limit, after, errors.is_empty()) else {
            return Err(AppError::Validation(errors));
        };
        let filter = UserFilter {
            text,
            role,
            disabled,
        };
        // One extra row tells whether another page follows.
        let mut items = self.users.list(after, limit + 1, &filter).await?;
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

/// When the address changes: a verification link to the new one and a
/// notice to the old one, committed with the change.
fn address_change_mails(current: &User, new_email: Option<&str>, now: OffsetDateTime) -> Vec<Job> {
    match new_email {
        Some(new_email) if new_email != current.email => vec![
            Job::new(Task::VerifyEmail {
                to: new_email.to_string(),
                requested_at_ms: (now.unix_timestamp_nanos() / 1_000_000) as i64,
            }),
            Job::new(Task::EmailChangedNotice {
                to: current.email.clone(),
                username: current.username.clone(),
            }),
        ],
        _ => Vec::new(),
    }
}
