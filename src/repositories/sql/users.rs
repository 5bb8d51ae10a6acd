//! The user repository. The SQL text is the same on both backends (`$N`
//! placeholders, `RETURNING`, expression indexes work on SQLite and
//! PostgreSQL), so one macro body is compiled once per backend: a change to
//! a query lands on both, and the shared test suite runs against both.

mod rows;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::account_tokens::millis;
use super::audit::record_in;
use super::outbox::insert_job_in;
use super::sessions::{END_ALL, session_ids};
use super::{
    Credentials, Fenced, LoginName, NewAuditEvent, NewUser, PasswordSet, SqlError, UserChanges,
    UserFilter, UserRepository,
};
use crate::domain::{Job, Role, User, UserId};

use rows::{CredentialsRow, UserRow, credential_columns, user_columns};

pub(super) use rows::parse_role;

/// `text` as a LIKE pattern that matches it anywhere, literally.
fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for character in text.to_lowercase().chars() {
        if matches!(character, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(character);
    }
    pattern.push('%');
    pattern
}

macro_rules! sql_user_repository {
    ($name:ident, $database:ty) => {
        pool_repository!($name, $database);

        #[async_trait]
        impl UserRepository for $name {
            async fn insert(
                &self,
                new_user: NewUser<'_>,
                job: &Job,
                event: &NewAuditEvent,
            ) -> Result<User, SqlError> {
                let mut transaction = self.pool.begin().await?;
                let sql = concat!(
                    "INSERT INTO users (username, email, password_hash, role, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $5) RETURNING ",
                    user_columns!()
                );
                let user: User = sqlx::query_as::<_, UserRow>(sql)
                    .bind(new_user.username)
                    .bind(new_user.email)
                    .bind(new_user.password_hash)
                    .bind(new_user.role.as_str())
                    .bind(new_user.now)
                    .fetch_one(&mut *transaction)
                    .await?
                    .try_into()?;
                insert_job_in!(&mut *transaction, job, new_user.now)?;
                let event = NewAuditEvent {
                    subject: Some(user.id),
                    ..event.clone()
                };
                record_in!(&mut *transaction, &event)?;
                transaction.commit().await?;
                Ok(user)
            }

            async fn find(&self, id: UserId) -> Result<Option<User>, SqlError> {
                let sql = concat!("SELECT ", user_columns!(), " FROM users WHERE id = $1");
                sqlx::query_as::<_, UserRow>(sql)
                    .bind(id.0)
                    .fetch_optional(&self.pool)
                    .await?
                    .map(User::try_from)
                    .transpose()
            }

            async fn find_credentials(
                &self,
                login: LoginName<'_>,
            ) -> Result<Option<Credentials>, SqlError> {
                let (sql, value) = match login {
                    LoginName::Username(name) => (
                        concat!("SELECT ", credential_columns!(), " FROM users WHERE lower(username) = lower($1)"),
                        name,
                    ),
                    LoginName::Email(email) => {
                        (concat!("SELECT ", credential_columns!(), " FROM users WHERE email = $1"), email)
                    }
                };
                sqlx::query_as::<_, CredentialsRow>(sql)
                    .bind(value)
                    .fetch_optional(&self.pool)
                    .await?
                    .map(Credentials::try_from)
                    .transpose()
            }

            async fn find_credentials_by_id(
                &self,
                id: UserId,
            ) -> Result<Option<Credentials>, SqlError> {
                sqlx::query_as::<_, CredentialsRow>(
                    concat!("SELECT ", credential_columns!(), " FROM users WHERE id = $1"),
                )
                .bind(id.0)
                .fetch_optional(&self.pool)
                .await?
                .map(Credentials::try_from)
                .transpose()
            }

            async fn update(
                &self,
                id: UserId,
                changes: UserChanges<'_>,
                now: OffsetDateTime,
                fence: i64,
                events: &[NewAuditEvent],
            ) -> Result<Fenced<User>, SqlError> {
                // A new address is unverified until its link is followed.
                let sql = concat!(
                    "UPDATE users SET username = COALESCE($2, username), \
                     email = COALESCE($3, email), role = COALESCE($4, role), \
                     email_verified = CASE WHEN COALESCE($3, email) = email \
                       THEN email_verified ELSE FALSE END, \
                     disabled = COALESCE($7, disabled), \
                     version = version + 1, updated_at = $5, fence = $6 \
                     WHERE id = $1 AND fence < $6 RETURNING ",
                    user_columns!()
                );
                let mut transaction = self.pool.begin().await?;
                let updated = sqlx::query_as::<_, UserRow>(sql)
                    .bind(id.0)
                    .bind(changes.username)
                    .bind(changes.email)
                    .bind(changes.role.map(Role::as_str))
                    .bind(now)
                    .bind(fence)
                    .bind(changes.disabled)
                    .fetch_optional(&mut *transaction)
                    .await?;
                if let Some(row) = updated {
                    // The mails the change causes are committed with it.
                    for job in changes.jobs {
                        insert_job_in!(&mut *transaction, job, now)?;
                    }
                    for event in events {
                        record_in!(&mut *transaction, event)?;
                    }
                    transaction.commit().await?;
                    return Ok(Fenced::Applied(row.try_into()?));
                }
                drop(transaction);
                let exists = sqlx::query("SELECT 1 FROM users WHERE id = $1")
                    .bind(id.0)
                    .fetch_optional(&self.pool)
                    .await?
                    .is_some();
                Ok(if exists { Fenced::Stale } else { Fenced::Missing })
            }

            async fn set_password_hash(
                &self,
                id: UserId,
                password_hash: &str,
                now: OffsetDateTime,
                event: &NewAuditEvent,
            ) -> Result<Option<PasswordSet>, SqlError> {
                let mut transaction = self.pool.begin().await?;
                let version: Option<i64> = sqlx::query_scalar(
                    "UPDATE users SET password_hash = $2, version = version + 1, updated_at = $3 \
                     WHERE id = $1 RETURNING version",
                )
                .bind(id.0)
                .bind(password_hash)
                .bind(now)
                .fetch_optional(&mut *transaction)
                .await?;
                let Some(version) = version else {
                    return Ok(None);
                };
                let ended: Vec<String> = sqlx::query_scalar(END_ALL)
                    .bind(id.0)
                    .bind(millis(now))
                    .fetch_all(&mut *transaction)
                    .await?;
                record_in!(&mut *transaction, event)?;
                transaction.commit().await?;
                Ok(Some(PasswordSet {
                    user: id,
                    version,
                    ended: session_ids(ended),
                }))
            }

            async fn delete(&self, id: UserId, event: &NewAuditEvent) -> Result<bool, SqlError> {
                let mut transaction = self.pool.begin().await?;
                let result = sqlx::query("DELETE FROM users WHERE id = $1")
                    .bind(id.0)
                    .execute(&mut *transaction)
                    .await?;
                if result.rows_affected() != 1 {
                    return Ok(false);
                }
                record_in!(&mut *transaction, event)?;
                transaction.commit().await?;
                Ok(true)
            }

            async fn list(
                &self,
                after: Option<UserId>,
                limit: u32,
                filter: &UserFilter<'_>,
            ) -> Result<Vec<User>, SqlError> {
                // Only the filters given become conditions, so each
                // combination is a plan of its own (PostgreSQL answers the
                // text search from trigram indexes).
                let text = filter.text.map(contains_pattern);
                let mut sql = String::from(concat!("SELECT ", user_columns!(), " FROM users WHERE id > $1"));
                let mut next = 2;
                let mut condition = |sql: &mut String, template: &str| {
                    sql.push_str(&template.replace('?', &format!("${next}")));
                    next += 1;
                };
                if text.is_some() {
                    condition(&mut sql, " AND (lower(username) LIKE ? ESCAPE '\\' OR email LIKE ? ESCAPE '\\')");
                }
                if filter.role.is_some() {
                    condition(&mut sql, " AND role = ?");
                }
                if filter.disabled.is_some() {
                    condition(&mut sql, " AND disabled = ?");
                }
                condition(&mut sql, " ORDER BY id LIMIT ?");
                // Not prepared once and reused: PostgreSQL's generic plan for
                // a `LIKE $n` cannot tell a rare pattern from a common one
                // and walks the primary key (0.6 s at a million users for a
                // single match); planned with the pattern, it takes the
                // trigram indexes when they pay.
                let mut query = sqlx::query_as::<_, UserRow>(&sql)
                    .persistent(false)
                    .bind(after.map_or(0, |id| id.0));
                if let Some(text) = &text {
                    query = query.bind(text);
                }
                if let Some(role) = filter.role {
                    query = query.bind(role.as_str());
                }
                if let Some(disabled) = filter.disabled {
                    query = query.bind(disabled);
                }
                query
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(User::try_from)
                    .collect()
            }
        }
    };
}

sql_user_repository!(SqliteUserRepository, sqlx::Sqlite);
sql_user_repository!(PgUserRepository, sqlx::Postgres);
