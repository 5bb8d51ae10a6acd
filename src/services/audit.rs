//! The audit log: events built here (with where the request came from),
//! written by the repositories in the transaction of the change they
//! record, and read by admins newest first.

use std::net::IpAddr;
use std::sync::Arc;

use serde_json::Value;
use time::OffsetDateTime;

use super::sessions::Admin;
use crate::domain::{AuditEvent, UserId};
use crate::error::AppError;
use crate::repositories::sql::{AuditFilter, AuditRepository, NewAuditEvent};
use crate::telemetry::current_request_id;

tokio::task_local! {
    /// The client address of the request being handled (set at the edge,
    /// where trusted proxies are known).
    static CLIENT_ADDRESS: IpAddr;
}

/// Runs `work` as the handling of a request from `address`.
pub async fn with_client_address<F: Future>(address: IpAddr, work: F) -> F::Output {
    CLIENT_ADDRESS.scope(address, work).await
}

/// An event of the request being handled: when, and from where.
pub fn event(
    action: &'static str,
    actor: Option<UserId>,
    subject: Option<UserId>,
    details: Value,
) -> NewAuditEvent {
    NewAuditEvent {
        at: OffsetDateTime::now_utc(),
        action,
        actor,
        subject,
        ip: CLIENT_ADDRESS.try_with(ToString::to_string).ok(),
        request_id: current_request_id(),
        details: details.to_string(),
    }
}

pub const DEFAULT_PAGE_SIZE: u32 = 50;
pub const MAX_PAGE_SIZE: u32 = 100;

/// Which events to list: a page of at most `limit`, older than `before`,
/// of those matching every filter given.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub subject: Option<UserId>,
    pub actor: Option<UserId>,
    pub action: Option<String>,
    pub limit: u32,
    pub before: Option<i64>,
}

pub struct AuditPage {
    pub items: Vec<AuditEvent>,
    pub next_before_id: Option<i64>,
}

#[derive(Clone)]
pub struct AuditService {
    repository: Arc<dyn AuditRepository>,
}

impl AuditService {
    pub fn new(repository: Arc<dyn AuditRepository>) -> Self {
        Self { repository }
    }

    /// Records an event that goes with no other change. A failure is
    /// logged: it must not turn the request it records into an error.
    pub async fn record(&self, event: NewAuditEvent) {
        if let Err(error) = self.repository.record(&event).await {
            tracing::warn!(error = ?error, action = event.action, "audit event not recorded");
        }
    }

    /// Events, newest first, a page at a time (admins only).
    pub async fn list(&self, _admin: Admin<'_>, query: AuditQuery) -> Result<AuditPage, AppError> {
        let limit = query.limit;
        let filter = AuditFilter {
            subject: query.subject,
            actor: query.actor,
            action: query.action.as_deref(),
            before: query.before,
            // One extra row tells whether another page follows.
            limit: limit + 1,
        };
        let mut items = self.repository.list(&filter).await?;
        let next_before_id = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|event| event.id)
        } else {
            None
        };
        Ok(AuditPage {
            items,
            next_before_id,
        })
    }
}
