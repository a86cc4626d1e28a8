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
use crate::session::store::listen;
use crate::session::{
    CachedStore, ConfigError, PostgresStore, PreviousKeys, SessionConfig, SessionError,
    SessionStore, Sessions, SqliteStore, error_chain,
};

/// Why the database could not be set up at launch.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Config(ConfigError),
    #[error("database_url must start with `sqlite:` or `postgres:` (got `{0}:`)")]
    UnsupportedScheme(String),
    #[error("database_url is not a valid URL")]
    InvalidUrl(#[source] sqlx::Error),
    #[error("could not create the folder for the SQLite database")]
    CreateDir(#[source] std::io::Error),
    #[error(
        "could not connect to the database at database_url (is it running, and is the URL right?)"
    )]
    Connect(#[source] sqlx::Error),
    #[error("could not apply migrations")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    #[error("could not open the session store")]
    Store(#[source] SessionError),
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
                    .busy_timeout(timeout)
                    // 1 MiB of page cache per connection instead of 2: sessions are small
                    // and the hot ones live in the session cache anyway.
                    .pragma("cache_size", "-1024");
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
                // A name of its own on every connection: other instances tell this one's
                // session changes by it (see session::store::listen).
                let options = PgConnectOptions::from_str(url)
                    .map_err(SetupError::InvalidUrl)?
                    .application_name(&listen::instance_name());
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
            Self::Sqlite(pool) => SqliteStore::migrate(pool).await,
            Self::Postgres(pool) => PostgresStore::migrate(pool).await,
        }
        .map_err(SetupError::Migrate)
    }

    /// `"sqlite"` or `"postgres"`, for messages.
    pub fn backend_name(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }

    /// Whether the database answers a trivial query now.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        match self {
            Self::Sqlite(pool) => sqlx::query("select 1").execute(pool).await.map(drop),
            Self::Postgres(pool) => sqlx::query("select 1").execute(pool).await.map(drop),
        }
    }

    /// The session store backed by this pool, with up to `cache_capacity` sessions also kept in
    /// memory (0: none). On Postgres (unless `postgres_cache` is off) the cache follows other
    /// instances' changes through notifications, waits for them before serving a hit, and reads
    /// through whenever it cannot hear them.
    pub async fn session_store(
        &self,
        config: &SessionConfig,
    ) -> Result<Arc<dyn SessionStore>, SessionError> {
        let cache_capacity = config.cache_capacity;
        Ok(match self {
            Self::Sqlite(pool) => {
                let store = SqliteStore::open(pool.clone()).await?;
                if cache_capacity == 0 {
                    Arc::new(store)
                } else {
                    Arc::new(CachedStore::new(store, cache_capacity))
                }
            }
            Self::Postgres(pool) => {
                let store = PostgresStore::open(pool.clone());
                if cache_capacity == 0 || !config.postgres_cache {
                    Arc::new(store)
                } else {
                    let (barrier, barriers) = listen::barrier();
                    let cached = Arc::new(
                        CachedStore::distrusted(store, cache_capacity).with_barrier(barrier),
                    );
                    let instance = pool
                        .connect_options()
                        .get_application_name()
                        .unwrap_or_default()
                        .to_owned();
                    listen::spawn(pool.clone(), &cached, instance, barriers);
                    cached
                }
            }
        })
    }
}

/// Connects, migrates, and hands the session layer its store and settings (as managed
/// `Database` and `Sessions`). A bad configuration or an unreachable database stops the launch
/// with a message saying which. An app that already manages both (as [`crate::launch::serve`]
/// does, having opened them before Rocket starts) keeps them.
pub fn stage() -> AdHoc {
    AdHoc::try_on_ignite("Database and sessions", |rocket| async {
        if rocket.state::<Sessions>().is_some() && rocket.state::<Database>().is_some() {
            return Ok(rocket);
        }
        let ready = async {
            let config = Config::load(rocket.figment()).map_err(SetupError::Config)?;
            let previous =
                PreviousKeys::from_figment(rocket.figment()).map_err(SetupError::Config)?;
            open(&config, previous).await
        };
        match ready.await {
            Ok((database, sessions)) => Ok(rocket.manage(database).manage(sessions)),
            Err(error) => {
                log::error!("{}", error_chain(&error));
                Err(rocket)
            }
        }
    })
}

/// Connects, migrates and opens the session store: everything the app's managed state needs.
///
/// # Errors
///
/// A [`SetupError`] saying which step failed and why.
pub async fn open(
    config: &Config,
    previous_keys: PreviousKeys,
) -> Result<(Database, Sessions), SetupError> {
    let database = Database::connect(config).await?;
    database.migrate().await?;
    let store = database
        .session_store(&config.session)
        .await
        .map_err(SetupError::Store)?;
    let sessions = Sessions::new(store, config.session.clone()).with_previous_keys(previous_keys);
    Ok((database, sessions))
}
