use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use user_api::config::Settings;
use user_api::startup::Application;
use user_api::{cli, telemetry};

#[derive(Parser)]
#[command(name = "user-api", version, about = "The user API service")]
struct Cli {
    /// Folder holding base.toml and {APP_ENVIRONMENT}.toml.
    #[arg(long, default_value = "config", global = true)]
    config_dir: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server (the default).
    Serve,
    /// Run the job workers (and the outbox relay) without the HTTP server.
    Worker,
    /// Apply the database migrations and exit.
    Migrate,
    /// Exit 0 if the local server answers /health/live (container HEALTHCHECK).
    Healthcheck,
    /// Create an admin account, or promote the user with this username.
    /// The password is read from standard input.
    CreateAdmin {
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: String,
    },
    /// Cache administration.
    Cache {
        #[command(subcommand)]
        command: CacheCommand,
    },
    /// Job queue administration.
    Jobs {
        #[command(subcommand)]
        command: JobsCommand,
    },
}

#[derive(Subcommand)]
enum JobsCommand {
    /// Put dead-lettered jobs back in the queue, with fresh attempts.
    ReplayDead {
        #[arg(long, default_value_t = 1000)]
        limit: u64,
    },
}

#[derive(Subcommand)]
enum CacheCommand {
    /// Delete cache entries whose key (after `{prefix}cache:`) ends with
    /// SUFFIX or starts with PREFIX, taken literally.
    Evict {
        #[arg(long, conflicts_with = "prefix", required_unless_present = "prefix")]
        suffix: Option<String>,
        #[arg(long)]
        prefix: Option<String>,
        /// Count the keys without deleting them.
        #[arg(long)]
        dry_run: bool,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "fatal");
            eprintln!("user-api: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::load(&cli.config_dir)?;
    telemetry::init(&settings.log);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            Application::build(settings)
                .await?
                .run_until_stopped()
                .await
        }
        Command::Worker => cli::worker(&settings).await,
        Command::Migrate => cli::migrate(&settings).await,
        Command::Healthcheck => cli::healthcheck(&settings),
        Command::CreateAdmin { username, email } => {
            cli::create_admin(&settings, username, email).await
        }
        Command::Cache {
            command:
                CacheCommand::Evict {
                    suffix,
                    prefix,
                    dry_run,
                },
        } => cli::evict_cache(&settings, suffix, prefix, dry_run).await,
        Command::Jobs {
            command: JobsCommand::ReplayDead { limit },
        } => cli::replay_dead_jobs(&settings, limit).await,
    }
}
