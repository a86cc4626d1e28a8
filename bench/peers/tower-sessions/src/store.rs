//! The sqlx store DATABASE_URL names, seen through tower-sessions 0.15's `SessionStore`.
//!
//! tower-sessions-sqlx-store 0.15, the newest release, implements tower-sessions-core 0.14's
//! trait, not the 0.15 that tower-sessions 0.15 is built on. The two cores differ only in their
//! `rand` version and an atomic ordering fix, and their `Record`s have the same fields, so this
//! bridge converts records field by field and leaves every query to the store.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};
use tower_sessions_core_014::{self as core014, ExpiredDeletion};
use tower_sessions_sqlx_store::sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use tower_sessions_sqlx_store::sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use tower_sessions_sqlx_store::sqlx::{self, Executor};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

/// latch's defaults for its pool: 8 connections, 5 s to get one (and, on SQLite, for a lock).
const MAX_CONNECTIONS: u32 = 8;
const TIMEOUT: Duration = Duration::from_secs(5);

/// bench/db.py counts and snapshots a table `sessions (id_hash, version, expires_at)`: these
/// views show the store's table that way, so bench/run.sh's row counts work on this app too.
/// Nothing on the request path reads them.
const SQLITE_VIEW: &str = "create view if not exists sessions as \
     select id as id_hash, hex(data) as version, expiry_date as expires_at from tower_sessions";
const POSTGRES_VIEW: &str = "create or replace view public.sessions as \
     select convert_to(id, 'UTF8') as id_hash, md5(data) as version, expiry_date as expires_at \
     from tower_sessions.session";

/// A store and the pool it queries (kept for the health check, which the stores do not offer).
#[derive(Clone, Debug)]
pub enum Store {
    Sqlite(SqlitePool, SqliteStore),
    Postgres(PgPool, PostgresStore),
}

impl Store {
    /// Opens the pool for a `sqlite:` or `postgres:` URL.
    pub async fn connect(url: &str) -> Result<Self, sqlx::Error> {
        if url.starts_with("sqlite:") {
            // latch's SQLite settings, so both pay the same for durability and memory.
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(TIMEOUT)
                .pragma("cache_size", "-1024");
            let pool = SqlitePoolOptions::new()
                .max_connections(MAX_CONNECTIONS)
                .acquire_timeout(TIMEOUT)
                .test_before_acquire(false)
                .connect_with(options)
                .await?;
            Ok(Self::Sqlite(pool.clone(), SqliteStore::new(pool)))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = PgPoolOptions::new()
                .max_connections(MAX_CONNECTIONS)
                .acquire_timeout(TIMEOUT)
                .connect_with(PgConnectOptions::from_str(url)?)
                .await?;
            Ok(Self::Postgres(pool.clone(), PostgresStore::new(pool)))
        } else {
            Err(sqlx::Error::Configuration(
                "DATABASE_URL must start with sqlite: or postgres:".into(),
            ))
        }
    }

    /// Creates the store's table, then db.py's view of it.
    pub async fn migrate(&self) -> Result<(), sqlx::Error> {
        let view = match self {
            Self::Sqlite(pool, store) => {
                store.migrate().await?;
                pool.execute(SQLITE_VIEW).await.map(drop)
            }
            Self::Postgres(pool, store) => {
                store.migrate().await?;
                pool.execute(POSTGRES_VIEW).await.map(drop)
            }
        };
        // Only the benchmark's bookkeeping needs the view: a database that already has a
        // `sessions` table of its own still serves sessions.
        if let Err(error) = view {
            eprintln!("no `sessions` view for bench/db.py: {error}");
        }
        Ok(())
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        match self {
            Self::Sqlite(pool, _) => pool.execute("select 1").await.map(drop),
            Self::Postgres(pool, _) => pool.execute("select 1").await.map(drop),
        }
    }

    /// The store's own deletion loop: deletes expired rows every `period` until a deletion
    /// fails, which ends it (tower-sessions' behaviour, kept as it is).
    pub async fn delete_expired_every(self, period: Duration) {
        let ended = match self {
            Self::Sqlite(_, store) => store.continuously_delete_expired(period).await,
            Self::Postgres(_, store) => store.continuously_delete_expired(period).await,
        };
        if let Err(error) = ended {
            eprintln!("expired-session deletion stopped: {error}");
        }
    }

    fn inner(&self) -> &dyn core014::SessionStore {
        match self {
            Self::Sqlite(_, store) => store,
            Self::Postgres(_, store) => store,
        }
    }
}

#[async_trait]
impl SessionStore for Store {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let mut old = to_014(record);
        self.inner().create(&mut old).await.map_err(from_014)?;
        // The store picks another ID if the first one was taken.
        record.id = Id(old.id.0);
        Ok(())
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        self.inner().save(&to_014(record)).await.map_err(from_014)
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let loaded = self
            .inner()
            .load(&core014::session::Id(id.0))
            .await
            .map_err(from_014)?;
        Ok(loaded.map(|old| Record {
            id: Id(old.id.0),
            data: old.data,
            expiry_date: old.expiry_date,
        }))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        let id = core014::session::Id(id.0);
        self.inner().delete(&id).await.map_err(from_014)
    }
}

fn to_014(record: &Record) -> core014::session::Record {
    core014::session::Record {
        id: core014::session::Id(record.id.0),
        data: record.data.clone(),
        expiry_date: record.expiry_date,
    }
}

fn from_014(error: core014::session_store::Error) -> session_store::Error {
    use core014::session_store::Error as Old;
    match error {
        Old::Encode(message) => session_store::Error::Encode(message),
        Old::Decode(message) => session_store::Error::Decode(message),
        Old::Backend(message) => session_store::Error::Backend(message),
    }
}
