//! The database: one pool, SQLite or PostgreSQL chosen at run time from the URL's scheme.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use rocket::fairing::AdHoc;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::config::Config;
use crate::session::{PostgresStore, SessionStore, Sessions, SqliteStore, error_chain};

/// Why the database could not be set up at launch.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("database_url must start with `sqlite:` or `postgres:` (got `{0}:`)")]
    UnsupportedScheme(String),
    #[error("database_url is not a valid URL")]
    InvalidUrl(#[source] sqlx::Error),
    #[error("could not create the folder for the SQLite database")]
    CreateDir(#[source] std::io::Error),
    #[error("could not connect to the database")]
    Connect(#[source] sqlx::Error),
    #[error("could not apply migrations")]
    Migrate(#[source] sqlx::migrate::MigrateError),
}

/// The app's connection pool.
#[derive(Debug, Clone)]
pub enum Database {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Database {
    /// Connects to the database named by `config.database_url`. A SQLite file (and its folder)
    /// is created if missing and opened in WAL mode, so readers never wait for the writer.
    pub async fn connect(config: &Config) -> Result<Self, SetupError> {
        let url = config.database_url.as_str();
        let timeout = Duration::from_secs(config.database_timeout);
        let scheme = url.split_once(':').map_or(url, |(scheme, _)| scheme);
        match scheme {
            "sqlite" => {
                let options = SqliteConnectOptions::from_str(url)
                    .map_err(SetupError::InvalidUrl)?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    // FULL syncs the WAL on every commit: an answered write survives a crash
                    // of the machine, not only of the process.
                    .synchronous(SqliteSynchronous::Full)
                    .busy_timeout(timeout);
                if let Some(dir) = options.get_filename().parent() {
                    std::fs::create_dir_all(dir).map_err(SetupError::CreateDir)?;
                }
                let pool = SqlitePoolOptions::new()
                    .max_connections(config.database_max_connections)
                    .acquire_timeout(timeout)
                    // An embedded database has no network between us and it to go stale.
                    .test_before_acquire(false)
                    .connect_with(options)
                    .await
                    .map_err(SetupError::Connect)?;
                Ok(Self::Sqlite(pool))
            }
            "postgres" | "postgresql" => {
                let options = PgConnectOptions::from_str(url).map_err(SetupError::InvalidUrl)?;
                let pool = PgPoolOptions::new()
                    .max_connections(config.database_max_connections)
                    .acquire_timeout(timeout)
                    .connect_with(options)
                    .await
                    .map_err(SetupError::Connect)?;
                Ok(Self::Postgres(pool))
            }
            other => Err(SetupError::UnsupportedScheme(other.to_owned())),
        }
    }

    /// Applies the migrations for this backend (`migrations/sqlite` or `migrations/postgres`).
    pub async fn migrate(&self) -> Result<(), SetupError> {
        match self {
            Self::Sqlite(pool) => SqliteStore::new(pool.clone()).migrate().await,
            Self::Postgres(pool) => PostgresStore::new(pool.clone()).migrate().await,
        }
        .map_err(SetupError::Migrate)
    }

    /// The session store backed by this pool.
    pub fn session_store(&self) -> Arc<dyn SessionStore> {
        match self {
            Self::Sqlite(pool) => Arc::new(SqliteStore::new(pool.clone())),
            Self::Postgres(pool) => Arc::new(PostgresStore::new(pool.clone())),
        }
    }
}

/// Connects, migrates, and hands the session layer its store and settings (as managed
/// `Database` and `Sessions`). A bad configuration or an unreachable database stops the launch
/// with a message saying which.
pub fn stage() -> AdHoc {
    AdHoc::try_on_ignite("Database and sessions", |rocket| async {
        let config: Config = match rocket.figment().extract() {
            Ok(config) => config,
            Err(error) => {
                log::error!("invalid configuration: {error}");
                return Err(rocket);
            }
        };
        if let Err(problem) = config.session.validate() {
            log::error!("invalid configuration: {problem}");
            return Err(rocket);
        }
        let database = match setup(&config).await {
            Ok(database) => database,
            Err(error) => {
                log::error!("database setup failed: {}", error_chain(&error));
                return Err(rocket);
            }
        };
        let sessions = Sessions::new(database.session_store(), config.session);
        Ok(rocket.manage(database).manage(sessions))
    })
}

async fn setup(config: &Config) -> Result<Database, SetupError> {
    let database = Database::connect(config).await?;
    database.migrate().await?;
    Ok(database)
}
