//! Updates of a user: under the user's lock, checked against `If-Match`,
//! fenced, audited, and invalidated after the commit.

use std::time::Duration;

use serde_json::json;
use time::OffsetDateTime;

use super::UserService;
use crate::domain::{Email, Job, Role, Task, User, UserId, Username};
use crate::error::AppError;
use crate::repositories::sql::{Fenced, NewAuditEvent, UserChanges};
use crate::services::audit;
use crate::services::cache::Representation;
use crate::services::sessions::Principal;

/// Fields to change, each checked; absent ones stay as they are.
#[derive(Debug, Default)]
pub struct UserPatch {
    pub username: Option<Username>,
    pub email: Option<Email>,
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

impl UserService {
    #[tracing::instrument(skip_all, fields(actor = %actor.user, user = %id))]
    pub async fn update(
        &self,
        actor: &Principal,
        id: UserId,
        patch: UserPatch,
        if_match: Option<IfMatch>,
    ) -> Result<User, AppError> {
        actor.require_self_or_admin(id)?;
        if patch.role.is_some() || patch.disabled.is_some() {
            actor.require_admin()?;
        }
        let changes = UserChanges {
            username: patch.username.as_ref().map(Username::as_str),
            email: patch.email.as_ref().map(Email::as_str),
            role: patch.role,
            jobs: &[],
            disabled: patch.disabled,
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
