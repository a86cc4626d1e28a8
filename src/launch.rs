//! Serving from the binary: every check a launch makes happens before Rocket starts, so a bad
//! setting, an unreachable database or a port in use is one clear line and exit status 1, never
//! a panic.

use rocket::error::ErrorKind;
use rocket::figment::Figment;

use latch::{ConfigError, SetupError, error_chain};

use crate::config;
use crate::secret::{self, SecretKeyError};

/// Why the server did not start, or did not stop cleanly; `main` prints it on one line.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    SecretKey(#[from] SecretKeyError),
    #[error("{}", error_chain(.0))]
    Setup(#[from] SetupError),
    #[error("could not create the walkthrough's tables: {}", error_chain(.0))]
    Tables(sqlx::migrate::MigrateError),
    #[error(
        "could not listen on {address}:{port}: {source} (is another server using the port? \
         choose another with ROCKET_PORT)"
    )]
    Bind {
        address: std::net::IpAddr,
        port: u16,
        source: std::io::Error,
    },
    #[error("the server failed: {0}")]
    Server(String),
}

/// Checks the configuration, opens the database and serves until SIGTERM or SIGINT, when
/// requests in flight finish and the tasks stop.
///
/// # Errors
///
/// A [`LaunchError`] that says what failed and which setting to look at.
pub async fn serve(figment: Figment) -> Result<(), LaunchError> {
    let config = config::load(&figment)?;
    let rocket_config =
        rocket::Config::try_from(&figment).map_err(|error| ConfigError::from_figment(&error))?;
    let figment = secret::resolve(&figment)?.unwrap_or(figment);
    // Opened here rather than by the `Latch` fairing (which keeps what it finds managed), so a
    // database that does not answer is this function's one-line error.
    let (database, manager) = latch::open(config).await?;
    crate::accounts::schema::apply(&database)
        .await
        .map_err(LaunchError::Tables)?;
    let launched = crate::rocket(figment)
        .manage(database)
        .manage(manager)
        .launch()
        .await;
    match launched {
        Ok(_) => Ok(()),
        Err(error) => Err(match error.kind() {
            ErrorKind::Bind(source) => LaunchError::Bind {
                address: rocket_config.address,
                port: rocket_config.port,
                source: std::io::Error::new(source.kind(), source.to_string()),
            },
            ErrorKind::Config(error) => ConfigError::from_figment(error).into(),
            other => LaunchError::Server(error_text(other)),
        }),
    }
}

/// What Rocket's own error says, on one line (reading `kind()` marks it handled, so Rocket
/// does not panic when it is dropped).
fn error_text(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::FailedFairings(fairings) => {
            let names: Vec<_> = fairings.iter().map(|info| info.name).collect();
            format!("launch stopped by {} (see the log above)", names.join(", "))
        }
        ErrorKind::Shutdown(_, Some(error)) => format!("shutdown failed: {error}"),
        ErrorKind::Shutdown(_, None) => {
            "shutdown failed: requests were still running after the grace period".into()
        }
        other => format!("{other:?}"),
    }
}
