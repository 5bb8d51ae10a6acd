use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgGroup, Parser, Subcommand};
use user_api::config::{LogFormat, Settings};
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
        /// Login name of the admin: 3 to 32 letters, digits, '_', '.' or '-'.
        /// An existing user of that name is made an admin instead.
        #[arg(long)]
        username: String,
        /// E-mail address of the new admin (not changed when promoting).
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
        /// Replay at most this many dead jobs.
        #[arg(long, default_value_t = 1000)]
        limit: u64,
    },
}

#[derive(Subcommand)]
enum CacheCommand {
    /// Delete cache entries whose key (after `{key_prefix}cache:`, e.g.
    /// `user:42` of `app:cache:user:42`) ends with SUFFIX or starts with
    /// PREFIX, taken literally. Give exactly one of the two.
    #[command(group(ArgGroup::new("selector").required(true).args(["suffix", "prefix"])))]
    Evict {
        /// Literal end of the keys to delete: `:42` = every cached entry of user 42.
        #[arg(long)]
        suffix: Option<String>,
        /// Literal start of the keys to delete: `user:` = every cached user.
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
    let code = match Settings::load(&cli.config_dir) {
        Ok(settings) => {
            telemetry::init(&settings.log);
            let json_logs = settings.log.format == LogFormat::Json;
            match run(cli, settings).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    // Once: as a log event where logs are JSON (a collector
                    // reads them), else as a plain line for the person.
                    if json_logs {
                        tracing::error!(error = format!("{error:#}"), "fatal");
                    } else {
                        telemetry::print_error(&error);
                    }
                    ExitCode::FAILURE
                }
            }
        }
        Err(error) => {
            telemetry::print_error(&error);
            ExitCode::FAILURE
        }
    };
    telemetry::flush();
    code
}

async fn run(cli: Cli, settings: Settings) -> anyhow::Result<()> {
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
