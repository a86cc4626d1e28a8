//! Serving from the binary: every check a launch makes happens before Rocket starts, so a bad
//! setting, an unreachable database or a port in use is one clear line and exit status 1, never
//! a panic.

use rocket::error::ErrorKind;
use rocket::figment::Figment;

use crate::config::Config;
use crate::db::{self, SetupError};
use crate::secret::{self, SecretKeyError};
use crate::session::{ConfigError, PreviousKeys, error_chain};

/// Why the server did not start, or did not stop cleanly; `main` prints it on one line.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    SecretKey(#[from] SecretKeyError),
    #[error("{}", error_chain(.0))]
    Setup(#[from] SetupError),
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
    let config = Config::load(&figment)?;
    let previous_keys = PreviousKeys::from_figment(&figment)?;
    let rocket_config =
        rocket::Config::try_from(&figment).map_err(|error| ConfigError::from_figment(&error))?;
    let figment = secret::resolve(&figment)?.unwrap_or(figment);
    let (database, sessions) = db::open(&config, previous_keys).await?;
    let launched = crate::rocket(figment)
        .manage(database)
        .manage(sessions)
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
