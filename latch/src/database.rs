//! Opening the database a store lives in: one pool, SQLite or PostgreSQL, chosen at run time
//! from the URL's scheme, with latch's schema applied.

#[cfg(feature = "sqlite")]
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

#[cfg(feature = "postgres")]
use crate::hosts::{Hosts, watched_pool};
#[cfg(feature = "postgres")]
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
#[cfg(feature = "sqlite")]
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::config::{Config, ConfigError, DatabaseConfig, SessionConfig};
#[cfg(feature = "postgres")]
use crate::store::PostgresStore;
#[cfg(feature = "sqlite")]
use crate::store::SqliteStore;
use time::OffsetDateTime;

use crate::store::{SessionStore, StoreError, StoreStats, from_unix_ms, unix_ms};
use crate::{SessionError, SessionManager, Table, schema};

/// Why the database or the store could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// A setting is out of range or of the wrong type.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The database URL names a backend this build does not have.
    #[error("the database URL must start with {schemes} (got `{0}:`)", schemes = supported_schemes())]
    UnsupportedScheme(String),
    /// The database URL could not be parsed.
    #[error("the database URL is not valid")]
    InvalidUrl(#[source] sqlx::Error),
    /// The folder of a SQLite file could not be created.
    #[error("could not create the folder for the SQLite database")]
    CreateDir(#[source] std::io::Error),
    /// The database did not answer.
    #[error("could not connect to the database (is it running, and is its URL right?)")]
    Connect(#[source] sqlx::Error),
    /// latch's schema could not be applied.
    #[error("could not apply latch's migrations")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// The sessions table's name is taken by a table latch did not make.
    #[error(
        "a table `{0}` already exists and latch did not make it: name another for latch's \
         sessions with the `table` setting"
    )]
    TableTaken(String),
    /// The store could not start (its writer's connection, say).
    #[error("could not open the session store")]
    Store(#[source] StoreError),
    /// The URL of this setting leads to a transaction pooler: a notification sent to a
    /// `LISTEN` there never arrived, so neither the cache's listener nor latch's migrations
    /// can work through it.
    #[error(
        "`{0}` does not keep one Postgres session from one statement to the next (a \
         transaction pooler, such as PgBouncer in transaction mode?): set \
         `database_direct_url` to a URL that reaches Postgres itself"
    )]
    NoSession(&'static str),
}

impl From<sqlx::migrate::MigrateError> for SetupError {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        Self::Migrate(error)
    }
}

impl From<StoreError> for SetupError {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

/// Whether this build has a backend for URLs of `scheme`.
pub(crate) fn supports_scheme(scheme: &str) -> bool {
    (cfg!(feature = "sqlite") && scheme == "sqlite")
        || (cfg!(feature = "postgres") && matches!(scheme, "postgres" | "postgresql"))
}

pub(crate) fn supported_schemes() -> &'static str {
    match (cfg!(feature = "sqlite"), cfg!(feature = "postgres")) {
        (true, true) => "`sqlite:` or `postgres:`",
        (true, false) => "`sqlite:` (this build has no `postgres` feature)",
        (false, _) => "`postgres:` (this build has no `sqlite` feature)",
    }
}

/// A connection pool on the database named by `database_url`.
#[derive(Debug, Clone)]
pub enum Database {
    /// An embedded SQLite file: one app instance.
    #[cfg(feature = "sqlite")]
    Sqlite(SqlitePool),
    /// A PostgreSQL database: any number of app instances.
    #[cfg(feature = "postgres")]
    Postgres(PgPool),
}

impl Database {
    /// Connects to `config.url`. A SQLite file (and its folder) is created if missing and opened
    /// in WAL mode, so readers never wait for the writer, with `synchronous = FULL`, so an
    /// answered write survives a crash of the machine. Applies nothing: see
    /// [`apply_schema`](Self::apply_schema).
    ///
    /// # Errors
    ///
    /// [`SetupError`] for an unsupported or malformed URL, a folder that cannot be created, or a
    /// database that does not answer.
    pub async fn connect(config: &DatabaseConfig) -> Result<Self, SetupError> {
        let url = config.url.as_str();
        let timeout = Duration::from_secs(config.timeout);
        let scheme = url.split_once(':').map_or(url, |(scheme, _)| scheme);
        match scheme {
            #[cfg(feature = "sqlite")]
            "sqlite" => {
                let options = SqliteConnectOptions::from_str(url)
                    .map_err(SetupError::InvalidUrl)?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .busy_timeout(timeout)
                    // 1 MiB of page cache per connection instead of 2: sessions are small
                    // and the hot ones live in the session cache anyway.
                    .pragma("cache_size", "-1024");
                if let Some(dir) = options.get_filename().parent() {
                    std::fs::create_dir_all(dir).map_err(SetupError::CreateDir)?;
                }
                let pool = SqlitePoolOptions::new()
                    .max_connections(config.max_connections)
                    .acquire_timeout(timeout)
                    // An embedded database has no network between us and it to go stale.
                    .test_before_acquire(false)
                    .connect_with(options)
                    .await
                    .map_err(SetupError::Connect)?;
                Ok(Self::Sqlite(pool))
            }
            #[cfg(feature = "postgres")]
            "postgres" | "postgresql" => {
                let pool = postgres_pool(url, config.max_connections, timeout).await?;
                Ok(Self::Postgres(pool))
            }
            other => Err(SetupError::UnsupportedScheme(other.to_owned())),
        }
    }

    /// Creates or updates latch's tables for the sessions table `table` (see
    /// [`schema`](crate::schema)). Safe on every start.
    ///
    /// # Errors
    ///
    /// [`SetupError::Migrate`] when a migration fails, [`SetupError::TableTaken`] when the
    /// table exists and is not latch's.
    pub async fn apply_schema(&self, table: &Table) -> Result<(), SetupError> {
        match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(pool) => schema::apply_sqlite(pool, table).await,
            #[cfg(feature = "postgres")]
            Self::Postgres(pool) => schema::apply_postgres(pool, table).await,
        }
    }

    /// The database, for a log line: the SQLite file (or that it is in memory), or the
    /// Postgres database, host, port and user. Never a password.
    pub fn describe(&self) -> String {
        match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(pool) => describe_sqlite(&pool.connect_options()),
            #[cfg(feature = "postgres")]
            Self::Postgres(pool) => describe_postgres(&pool.connect_options()),
        }
    }

    /// `"sqlite"` or `"postgres"`, for messages.
    pub fn backend_name(&self) -> &'static str {
        match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(_) => "sqlite",
            #[cfg(feature = "postgres")]
            Self::Postgres(_) => "postgres",
        }
    }

    /// Whether the database answers a trivial query now (for a health check).
    ///
    /// # Errors
    ///
    /// The database's error when it does not.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(pool) => sqlx::query("select 1").execute(pool).await.map(drop),
            // A simple query: nothing prepared, which any pooler carries.
            #[cfg(feature = "postgres")]
            Self::Postgres(pool) => sqlx::raw_sql("select 1").execute(pool).await.map(drop),
        }
    }

    /// The session store in `table` on this pool, with up to `cache_capacity` sessions also kept in memory
    /// (0: none). On Postgres (unless `postgres_cache` is off) the cache follows other
    /// instances' changes through notifications, waits for them before serving a hit, and reads
    /// through whenever it cannot hear them. Applies latch's schema first.
    ///
    /// # Errors
    ///
    /// [`SetupError`] when the schema cannot be applied or the store cannot start.
    pub async fn session_store(
        &self,
        table: &Table,
        config: &SessionConfig,
    ) -> Result<Arc<dyn SessionStore>, SetupError> {
        self.store_on(table, config, None).await
    }

    /// [`session_store`](Self::session_store); on Postgres with `direct`, a pool that reaches
    /// the database past the pooler this one goes through (see
    /// [`PostgresStore::open_behind_pooler`]).
    async fn store_on(
        &self,
        table: &Table,
        config: &SessionConfig,
        #[cfg_attr(
            not(feature = "postgres"),
            expect(unused_variables, reason = "Postgres only")
        )]
        direct: Option<Pool>,
    ) -> Result<Arc<dyn SessionStore>, SetupError> {
        let capacity = config.cache_capacity;
        Ok(match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(pool) => {
                let store = SqliteStore::open_table(pool.clone(), table.clone())
                    .await?
                    .batched();
                if capacity == 0 {
                    Arc::new(store)
                } else {
                    Arc::new(store.cached(capacity))
                }
            }
            #[cfg(feature = "postgres")]
            Self::Postgres(pool) => {
                let store = match direct {
                    Some(direct) => {
                        PostgresStore::open_behind_pooler(pool.clone(), direct, table.clone())
                            .await?
                    }
                    None => PostgresStore::open_table(pool.clone(), table.clone()).await?,
                }
                .batched();
                if capacity == 0 || !config.postgres_cache {
                    Arc::new(store)
                } else {
                    Arc::new(store.cached(capacity))
                }
            }
        })
    }

    /// How many sessions are live and expired at `now`, and when the oldest live one was
    /// created: for operators, outside the request path.
    ///
    /// # Errors
    ///
    /// [`SessionError`] when the query fails.
    pub async fn stats(
        &self,
        table: &Table,
        now: OffsetDateTime,
    ) -> Result<StoreStats, SessionError> {
        // The same SQL on both: `$1` is a numbered parameter in SQLite too.
        const STATS: &str = "
            select
                count(*) filter (where expires_at > $1) as live,
                count(*) filter (where expires_at <= $1) as expired,
                min(created_at) filter (where expires_at > $1) as oldest
            from sessions";
        let (live, expired, oldest): (i64, i64, Option<i64>) = match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(pool) => {
                sqlx::query_as(table.sql(STATS))
                    .bind(unix_ms(now))
                    .fetch_one(pool)
                    .await?
            }
            #[cfg(feature = "postgres")]
            Self::Postgres(pool) => {
                // Unnamed, in a transaction of its own: safe through a transaction pooler.
                let mut transaction = pool.begin().await?;
                let stats = sqlx::query_as(table.sql(STATS))
                    .bind(unix_ms(now))
                    .persistent(false)
                    .fetch_one(&mut *transaction)
                    .await?;
                transaction.commit().await?;
                stats
            }
        };
        Ok(StoreStats {
            live,
            expired,
            oldest_live_created_at: oldest.map(from_unix_ms),
        })
    }
}

/// A pool that reaches the database past a pooler (only Postgres has them).
#[cfg(feature = "postgres")]
type Pool = PgPool;
#[cfg(not(feature = "postgres"))]
type Pool = std::convert::Infallible;

/// The pool a store's migrations and listener use when `database_direct_url` is set: the
/// database itself, past the pooler `database_url` goes through. Two connections at most: the
/// migrations', then the listener's.
#[cfg(feature = "postgres")]
async fn direct_pool(config: &DatabaseConfig) -> Result<Option<PgPool>, SetupError> {
    let Some(url) = &config.direct_url else {
        return Ok(None);
    };
    let pool = postgres_pool(url, 2, Duration::from_secs(config.timeout)).await?;
    Ok(Some(pool))
}

/// A pool of up to `max_connections` on the Postgres `url`: one server as sqlx connects to
/// it, or, for several (libpq's `host1:port1,host2:port2` form) or with
/// `target_session_attrs=read-write`, on the primary, followed through failovers (see
/// [`hosts`](crate::hosts)).
#[cfg(feature = "postgres")]
async fn postgres_pool(
    url: &str,
    max_connections: u32,
    timeout: Duration,
) -> Result<PgPool, SetupError> {
    let hosts = Hosts::parse(url).map_err(SetupError::InvalidUrl)?;
    if hosts.need_watching() {
        return watched_pool(hosts, max_connections, timeout)
            .await
            .map_err(SetupError::Connect);
    }
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(timeout)
        .connect_with(hosts.first().clone())
        .await
        .map_err(SetupError::Connect)
}

#[cfg(not(feature = "postgres"))]
async fn direct_pool(_: &DatabaseConfig) -> Result<Option<Pool>, SetupError> {
    Ok(None)
}

/// A SQLite database for the log: its file, or that it lives in memory.
#[cfg(feature = "sqlite")]
fn describe_sqlite(options: &SqliteConnectOptions) -> String {
    // How sqlx names the shared in-memory database of `sqlite::memory:`.
    let file = options.get_filename();
    if file.to_string_lossy().starts_with("file:sqlx-in-memory-") {
        "an in-memory SQLite database".to_owned()
    } else {
        format!("the SQLite file {}", file.display())
    }
}

/// A Postgres database for the log: user, host, port and name, never the password.
#[cfg(feature = "postgres")]
fn describe_postgres(options: &PgConnectOptions) -> String {
    format!(
        "PostgreSQL database `{}` on {}:{} as `{}`",
        options.get_database().unwrap_or(options.get_username()),
        options.get_host(),
        options.get_port(),
        options.get_username(),
    )
}

/// Connects to the configured database, applies latch's schema, opens the session store and
/// builds the [`SessionManager`] on it: what [`Latch`](crate::Latch) does at ignition, for apps
/// (and operator commands) that want to do it themselves, before Rocket starts.
///
/// # Errors
///
/// A [`SetupError`] saying which step failed and why.
pub async fn open(config: Config) -> Result<(Database, SessionManager), SetupError> {
    let table = config.database.sessions_table()?;
    let database = Database::connect(&config.database).await?;
    let direct = direct_pool(&config.database).await?;
    let store = database.store_on(&table, &config.session, direct).await?;
    log::info!(
        "latch: sessions in {}, table `{table}`",
        database.describe()
    );
    let manager =
        SessionManager::new(store, config.session).with_previous_keys(config.previous_keys);
    Ok((database, manager))
}
