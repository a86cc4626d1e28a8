//! Serving from the binary: every check a launch makes happens before Rocket starts, so a bad
//! setting, an unreachable database or a port in use is one clear line and exit status 1, never
//! a panic.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rocket::error::ErrorKind;
use rocket::figment::Figment;
use rocket::{Orbit, Rocket};

use latch::{ConfigError, SetupError};

use crate::error::error_chain;

use crate::secret::{self, SecretKeyError};
use crate::{accounts, config};

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
    #[error("could not start the async runtime: {0}")]
    Runtime(std::io::Error),
}

/// The Tokio runtime the binary runs on, sized by Rocket's `workers` and `max_blocking` (checked
/// first: Tokio panics on zero) and ended as Rocket's `shutdown.force` says.
pub struct Runtime {
    runtime: rocket::tokio::runtime::Runtime,
    force_end: bool,
}

impl Runtime {
    /// # Errors
    ///
    /// [`LaunchError::Config`] for an out-of-range setting, [`LaunchError::Runtime`] when the
    /// threads cannot be started.
    pub fn build(figment: &Figment) -> Result<Self, LaunchError> {
        let config = config::rocket_config(figment)?;
        let runtime = rocket::tokio::runtime::Builder::new_multi_thread()
            .thread_name("rocket-worker-thread")
            .worker_threads(config.workers)
            .max_blocking_threads(config.max_blocking)
            .enable_all()
            .build()
            .map_err(LaunchError::Runtime)?;
        Ok(Self {
            runtime,
            force_end: config.shutdown.force,
        })
    }

    /// Runs `future` to completion; with `shutdown.force`, tasks still running after it are
    /// given half a second before the process moves on.
    pub fn run<R>(self, future: impl Future<Output = R>) -> R {
        let result = self.runtime.block_on(future);
        if self.force_end {
            self.runtime.shutdown_timeout(Duration::from_millis(500));
        }
        result
    }
}

/// Checks the configuration, opens the database and serves until SIGTERM or SIGINT, when
/// requests in flight finish and the tasks stop.
///
/// # Errors
///
/// A [`LaunchError`] that says what failed and which setting to look at.
pub async fn serve(figment: Figment) -> Result<(), LaunchError> {
    let config = config::load(&figment)?;
    let rocket_config = config::rocket_config(&figment)?;
    let figment = secret::resolve(&figment)?.unwrap_or(figment);
    // Built first: that starts Rocket's logger, which then shows the line naming the database.
    let rocket = crate::rocket(figment);
    // Opened here rather than by the `Latch` fairing (which keeps what it finds managed), so a
    // database that does not answer is this function's one-line error.
    let database_config = config.database.clone();
    let (database, manager) = latch::open(config).await?;
    // Past the pooler when there is one: sqlx's migrator holds a lock for its session.
    let migrations = accounts::migrations_database(&database_config, &database).await?;
    accounts::schema::apply(&migrations)
        .await
        .map_err(LaunchError::Tables)?;
    let launched = rocket.manage(database).manage(manager).launch().await;
    match launched {
        Ok(_) => Ok(()),
        // Rocket hands the instance back only if nothing else holds it, and its accept loop can
        // end before the connections it spawned have (then it does not even wait for them).
        // Every write latch answered was committed before its answer, so what remains are
        // connections still finishing: wait for them as Rocket would have, then stop cleanly.
        Err(error) if matches!(error.kind(), ErrorKind::Shutdown(_, None)) => {
            if let ErrorKind::Shutdown(rocket, None) = error.kind() {
                let patience = rocket_config.shutdown.grace + rocket_config.shutdown.mercy;
                wait_for_connections(rocket, Duration::from_secs(u64::from(patience) + 1)).await;
            }
            Ok(())
        }
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

/// Waits until `rocket` is held by nothing but this function, at most `patience`; logs how
/// many connections were still open if it never is.
async fn wait_for_connections(rocket: &Arc<Rocket<Orbit>>, patience: Duration) {
    let deadline = rocket::tokio::time::Instant::now() + patience;
    while Arc::strong_count(rocket) > 1 && rocket::tokio::time::Instant::now() < deadline {
        rocket::tokio::time::sleep(Duration::from_millis(10)).await;
    }
    match Arc::strong_count(rocket) - 1 {
        0 => log::info!("shutdown complete: every connection has closed"),
        open => log::warn!(
            "shutdown: {open} connection task(s) still open after the grace period were cut \
             (every write answered before them is committed)"
        ),
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
