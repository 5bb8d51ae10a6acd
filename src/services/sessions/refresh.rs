//! Refresh-token rotation and reuse detection. Each refresh spends the
//! presented token for the next one; a spent one presented again within
//! the grace period (another tab) gets the same next token, after it (a
//! thief, or the victim after one) ends the session.

use serde_json::json;
use time::OffsetDateTime;

use super::{SessionService, Tokens, now_ms};
use crate::domain::{RefreshToken, SessionId, UserId};
use crate::error::AppError;
use crate::services::audit;
use crate::services::refresh_tokens::RefreshSecrets;

/// The most rotations `precedes` walks back: a month and more of refreshes
/// at the default access-token lifetime (15 minutes), for a few
/// milliseconds of HMACs when a forged token names a live session.
const MAX_ROTATIONS_WALKED: u32 = 4096;

impl SessionService {
    /// A new pair for the session `presented` belongs to (see the module
    /// comment for reuse). Unknown, expired, ended: `unauthorized`.
    pub async fn refresh(&self, presented: &RefreshToken) -> Result<Tokens, AppError> {
        let id = presented.session();
        let presented_hash = RefreshSecrets::hash(presented);
        let next = self.secrets.next(presented).map_err(AppError::Internal)?;
        let next_hash = RefreshSecrets::hash(&next);
        let now = OffsetDateTime::now_utc();
        // Twice at most: a lost race to rotate is read again as a reuse.
        for _ in 0..2 {
            let state = self
                .repository
                .find(id)
                .await?
                .ok_or(AppError::Unauthorized)?;
            if state.ended || state.expires_at_ms <= now_ms(now) {
                return Err(AppError::Unauthorized);
            }
            let current = state.refresh_hash == presented_hash;
            if !current {
                let spent_ms = state.previous_spent_at_ms.unwrap_or(0);
                let grace_ms = self.settings.reuse_grace.as_millis() as i64;
                let after_grace = now_ms(now) > spent_ms + grace_ms;
                let Some(previous) = state.previous_refresh_hash.as_deref() else {
                    return Err(AppError::Unauthorized);
                };
                if previous != presented_hash {
                    // Spent before the previous one was: as stolen as it.
                    if after_grace && self.precedes(presented, previous)? {
                        self.end_after_reuse(id, state.user).await?;
                    }
                    return Err(AppError::Unauthorized);
                }
                if after_grace {
                    self.end_after_reuse(id, state.user).await?;
                    return Err(AppError::Unauthorized);
                }
                // Another tab's refresh: its next token must be the current one.
                if state.refresh_hash != next_hash {
                    return Err(AppError::Unauthorized);
                }
            }
            // Redis before SQL: with Redis down nothing is spent, so the
            // client can retry with the same token once it is back.
            if !self
                .store
                .activate(id, state.user, self.mirror_ttl())
                .await?
            {
                // Ended meanwhile: the tombstone wins.
                return Err(AppError::Unauthorized);
            }
            if current {
                if !self
                    .repository
                    .rotate(id, &presented_hash, &next_hash, now)
                    .await?
                {
                    continue;
                }
            } else {
                self.repository.touch(id, now).await?;
            }
            return self.issue(state.user, state.role, id, next, state.expires_at_ms, now);
        }
        Err(AppError::Unauthorized)
    }

    /// Whether `presented` is an earlier token of its session than the one
    /// hashed `later`: one its successors reach within the walk's bound.
    fn precedes(&self, presented: &RefreshToken, later: &str) -> Result<bool, AppError> {
        let mut token = self.secrets.next(presented).map_err(AppError::Internal)?;
        for _ in 0..MAX_ROTATIONS_WALKED {
            if RefreshSecrets::hash(&token) == later {
                return Ok(true);
            }
            token = self.secrets.next(&token).map_err(AppError::Internal)?;
        }
        Ok(false)
    }

    async fn end_after_reuse(&self, id: &SessionId, user: UserId) -> Result<(), AppError> {
        tracing::warn!(user = %user, session = %id, "spent refresh token reused; session ended");
        let event = audit::event(
            "auth.refresh_reused",
            None,
            Some(user),
            json!({"session": id.as_str()}),
        );
        self.end(user, id, Some(event)).await.map(drop)
    }
}
