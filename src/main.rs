//! The `latch` binary: serves the app (the default), or runs one operator command.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use latch::error_chain;
use latch_walkthrough::ops;

/// Server-side sessions for Rocket: the walkthrough app and its operator commands.
///
/// Configuration comes from Rocket.toml, ROCKET_* variables and DATABASE_URL, for every command.
#[derive(Parser)]
#[command(name = "latch", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the app (what `latch` does with no command).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Delete expired sessions once (in batches) and print how many.
    Purge,
    /// Inspect stored sessions.
    Sessions {
        #[command(subcommand)]
        command: SessionsCommand,
    },
}

#[derive(Subcommand)]
enum SessionsCommand {
    /// Live and expired (not yet purged) counts, and the oldest live session.
    Stats,
}

#[rocket::main]
#[expect(
    clippy::print_stdout,
    reason = "operator commands report on standard output"
)]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve);
    if let Command::Serve = command {
        return match latch_walkthrough::launch::serve(latch_walkthrough::figment()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("error: {error}");
                ExitCode::FAILURE
            }
        };
    }
    let outcome = async {
        let config = ops::load_config()?;
        match command {
            Command::Migrate => ops::migrate(&config).await,
            Command::Purge => ops::purge(&config).await,
            Command::Sessions {
                command: SessionsCommand::Stats,
            } => ops::stats(&config).await,
            Command::Serve => unreachable!("handled above"),
        }
    }
    .await;
    match outcome {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {}", error_chain(&error));
            ExitCode::FAILURE
        }
    }
}
