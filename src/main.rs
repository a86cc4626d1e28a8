//! The `latch` binary: serves the app (the default), or runs one operator command.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use latch_walkthrough::error::error_chain;
use latch_walkthrough::{launch, ops};
use rocket::figment::Figment;

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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let figment = latch_walkthrough::figment();
    // Built here rather than by `#[rocket::main]`, which panics on `workers = 0` before any
    // setting could be checked.
    let runtime = match launch::Runtime::build(&figment) {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.run(run(cli.command.unwrap_or(Command::Serve), figment))
}

#[expect(
    clippy::print_stdout,
    reason = "operator commands report on standard output"
)]
async fn run(command: Command, figment: Figment) -> ExitCode {
    if let Command::Serve = command {
        return match launch::serve(figment).await {
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
