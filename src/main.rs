use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use user_api::config::Settings;
use user_api::repositories::sql::Database;
use user_api::startup::Application;
use user_api::telemetry;

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
    /// Apply the database migrations and exit.
    Migrate,
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
        Command::Migrate => {
            let database = Database::connect(&settings.database).await?;
            database.migrate().await?;
            database.close().await;
            println!("migrations applied");
            Ok(())
        }
    }
}
