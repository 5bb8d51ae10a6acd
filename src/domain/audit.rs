use time::OffsetDateTime;

use super::UserId;

/// One recorded account event. Never holds a password or a token.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub id: i64,
    pub at: OffsetDateTime,
    pub action: String,
    pub actor: Option<UserId>,
    pub subject: Option<UserId>,
    pub ip: Option<String>,
    pub request_id: Option<String>,
    pub details: String,
}
