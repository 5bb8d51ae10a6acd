//! The audit log, for admins.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::Authenticated;
use crate::domain::{AuditEvent, UserId};
use crate::error::Problems;
use crate::error::{AppError, ErrorResponse};
use crate::services::audit::{AuditQuery, AuditService, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};

/// Filters and paging, as given; checked here so errors name them.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Events about this user.
    #[param(value_type = Option<i64>)]
    subject_id: Option<String>,
    /// Events caused by this user.
    #[param(value_type = Option<i64>)]
    actor_id: Option<String>,
    /// e.g. `auth.login_failed`.
    action: Option<String>,
    /// 1 to 100, default 50.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// Events older than this id (the previous page's `next_before_id`).
    #[param(value_type = Option<i64>)]
    before_id: Option<String>,
}

/// Longest action name asked for.
const MAX_ACTION_LENGTH: usize = 64;

impl AuditParams {
    fn parse(self) -> Result<AuditQuery, AppError> {
        let mut problems = Problems::default();
        let subject = problems.whole_number(self.subject_id.as_deref(), "subject_id");
        let actor = problems.whole_number(self.actor_id.as_deref(), "actor_id");
        let before = problems.whole_number(self.before_id.as_deref(), "before_id");
        let limit = problems.limit(
            self.limit.as_deref(),
            "limit",
            DEFAULT_PAGE_SIZE,
            MAX_PAGE_SIZE,
        );
        let action = self.action.filter(|action| !action.is_empty());
        if action
            .as_ref()
            .is_some_and(|action| action.len() > MAX_ACTION_LENGTH)
        {
            problems.add(
                "action",
                format!("must be at most {MAX_ACTION_LENGTH} characters"),
            );
        }
        let query = AuditQuery {
            subject: subject.flatten().map(UserId),
            actor: actor.flatten().map(UserId),
            action,
            limit,
            before: before.flatten(),
        };
        problems.or(Some(query))
    }
}

/// One recorded event. Never holds a password or a token.
#[derive(Serialize, ToSchema)]
pub struct AuditEventResponse {
    id: i64,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    at: time::OffsetDateTime,
    action: String,
    /// Who did it; null when nobody was signed in.
    #[schema(required = true)]
    actor_id: Option<i64>,
    /// Whose account it is about; null when no account is (e.g. a reset
    /// requested for an unknown address).
    #[schema(required = true)]
    subject_id: Option<i64>,
    #[schema(required = true)]
    ip: Option<String>,
    #[schema(required = true)]
    request_id: Option<String>,
    #[schema(schema_with = details_schema)]
    details: serde_json::Value,
}

/// An object of any fields, typed so in clients (a bare `object` reads as
/// one with no fields).
fn details_schema() -> utoipa::openapi::Object {
    use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(AdditionalProperties::FreeForm(true)))
        .description(Some(
            r#"What the event is about, e.g. `{"fields": ["email"]}`."#,
        ))
        .build()
}

impl From<AuditEvent> for AuditEventResponse {
    fn from(event: AuditEvent) -> Self {
        Self {
            id: event.id,
            at: event.at,
            action: event.action,
            actor_id: event.actor.map(|id| id.0),
            subject_id: event.subject.map(|id| id.0),
            ip: event.ip,
            request_id: event.request_id,
            // Always an object, as documented, even for a row it cannot read.
            details: serde_json::from_str(&event.details)
                .unwrap_or_else(|_| serde_json::Value::Object(Default::default())),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct AuditPageResponse {
    items: Vec<AuditEventResponse>,
    /// Pass as `before_id` for the next page; null on the last page.
    #[schema(required = true)]
    next_before_id: Option<i64>,
}

/// List audit events
///
/// Account events, newest first (admins only), filtered by the user they
/// are about (`subject_id`), who caused them (`actor_id`) and `action`;
/// pass the page's `next_before_id` as `before_id` for the next page.
#[utoipa::path(get, path = "/api/v1/admin/audit", tag = "admin", operation_id = "listAuditEvents",
    security(("bearer" = [])),
    params(AuditParams),
    responses(
        (status = 200, description = "A page of events", body = AuditPageResponse),
        (status = 401, description = "`unauthorized`", body = ErrorResponse),
        (status = 403, description = "`forbidden`", body = ErrorResponse),
        (status = 422, description = "`validation_failed`", body = ErrorResponse),
        (status = 429, description = "`rate_limited`", body = ErrorResponse),
        (status = 503, description = "`unavailable`", body = ErrorResponse),
    ))]
pub async fn list(
    audit: web::Data<AuditService>,
    Authenticated(principal): Authenticated,
    params: web::Query<AuditParams>,
) -> Result<HttpResponse, AppError> {
    let admin = principal.require_admin()?;
    let page = audit.list(admin, params.into_inner().parse()?).await?;
    Ok(HttpResponse::Ok().json(AuditPageResponse {
        items: page.items.into_iter().map(Into::into).collect(),
        next_before_id: page.next_before_id,
    }))
}
