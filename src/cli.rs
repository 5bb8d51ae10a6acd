//! The commands besides `serve`: `worker`, `migrate`, `healthcheck`,
//! `create-admin`, `cache evict` and `jobs replay-dead`.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::Context;
use secrecy::SecretString;

use crate::config::Settings;
use crate::error::AppError;
use crate::repositories::redis::RedisClient;
use crate::repositories::sql::Database;
use crate::services::auth::AdminAccount;
use crate::services::cache_admin::Selector;
use crate::startup::{AppState, shutdown_signal, start_jobs};

pub async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let database = Database::connect(&settings.database).await?;
    database.migrate().await?;
    database.close().await;
    print_line("migrations applied");
    Ok(())
}

async fn services(settings: &Settings) -> anyhow::Result<AppState> {
    let database = Database::connect(&settings.database).await?;
    database.migrate().await?;
    let redis = RedisClient::connect(&settings.redis).await?;
    AppState::build(settings, &database, &redis)
}

/// An `AppError` as a message for a terminal, naming invalid fields.
fn explain(error: AppError) -> anyhow::Error {
    match error {
        AppError::Validation(details) => anyhow::anyhow!(
            "invalid input: {}",
            details
                .iter()
                .map(|detail| format!("{} {}", detail.field, detail.message))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        AppError::Conflict(field) => {
            anyhow::anyhow!("{} is already taken by another user", field.field)
        }
        AppError::Unavailable(cause) | AppError::Internal(cause) => cause,
        other => anyhow::anyhow!("{other}"),
    }
}

/// A result line on stdout; a closed stdout (`| head -0`) is not an error
/// worth a panic.
fn print_line(line: &str) {
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

/// Reads the password from standard input: hidden when it is a terminal,
/// the first line otherwise (for scripts: `echo "$PW" | user-api create-admin ...`).
fn read_password() -> anyhow::Result<SecretString> {
    let password = if std::io::stdin().is_terminal() {
        rpassword::prompt_password("Password: ").context("reading the password")?
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password")?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    if password.is_empty() {
        anyhow::bail!(
            "no password given: type it at the prompt, or pass it on standard input \
             (printf '%s\\n' \"$PASSWORD\" | user-api create-admin ...)"
        );
    }
    Ok(SecretString::from(password))
}

pub async fn create_admin(
    settings: &Settings,
    username: String,
    email: String,
) -> anyhow::Result<()> {
    let password = read_password()?;
    let state = services(settings).await?;
    match state
        .auth
        .create_admin(username, email, password)
        .await
        .map_err(explain)?
    {
        AdminAccount::Created(user) => {
            print_line(&format!("created admin {} (id {})", user.username, user.id))
        }
        AdminAccount::Promoted(user) => print_line(&format!(
            "user {} (id {}) already existed and is now an admin; its password and e-mail were not changed",
            user.username, user.id
        )),
    }
    Ok(())
}

pub async fn evict_cache(
    settings: &Settings,
    suffix: Option<String>,
    prefix: Option<String>,
    dry_run: bool,
) -> anyhow::Result<()> {
    let selector = Selector::parse(suffix, prefix)
        .map_err(|problem| explain(AppError::Validation(vec![problem])))?;
    let state = services(settings).await?;
    if dry_run {
        let preview = state
            .cache_admin
            .preview(&selector, 0)
            .await
            .map_err(explain)?;
        print_line(&format!("would delete {} keys", preview.count));
    } else {
        let deleted = state
            .cache_admin
            .evict_from_shell(&selector)
            .await
            .map_err(explain)?;
        print_line(&format!("deleted {deleted} keys"));
    }
    Ok(())
}

/// The outbox relay and job workers alone, until SIGTERM or SIGINT.
pub async fn worker(settings: &Settings) -> anyhow::Result<()> {
    let database = Database::connect(&settings.database).await?;
    database.migrate().await?;
    let redis = RedisClient::connect(&settings.redis).await?;
    let jobs = start_jobs(settings, &database, &redis, Default::default(), true).await?;
    tracing::info!(workers = settings.worker.concurrency, "job workers running");
    shutdown_signal().await;
    tracing::info!("stopping: finishing jobs in progress");
    jobs.stop(std::time::Duration::from_secs(
        settings.server.shutdown_timeout_seconds,
    ))
    .await;
    redis.close();
    database.close().await;
    Ok(())
}

/// Puts dead-lettered jobs back in the queue.
pub async fn replay_dead_jobs(settings: &Settings, limit: u64) -> anyhow::Result<()> {
    let state = services(settings).await?;
    let replayed = state.jobs.replay_dead(limit).await.map_err(explain)?;
    print_line(&format!("replayed {replayed} jobs"));
    Ok(())
}

/// Exits 0 if this host's server answers `/health/live`: the container's
/// HEALTHCHECK, which needs no curl in the image.
pub fn healthcheck(settings: &Settings) -> anyhow::Result<()> {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Duration;

    let address = format!("127.0.0.1:{}", settings.server.port);
    let mut stream = TcpStream::connect_timeout(&address.parse()?, Duration::from_secs(2))
        .with_context(|| format!("nothing listens on {address}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream
        .write_all(b"GET /health/live HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply)?;
    if reply.starts_with("HTTP/1.1 200") {
        Ok(())
    } else {
        anyhow::bail!("unhealthy: {}", reply.lines().next().unwrap_or("no answer"))
    }
}
