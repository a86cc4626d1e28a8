//! The store contract (`latch::testing::contract`, the checks an outside store runs too) on
//! latch's own stores: SQLite and Postgres, each on its own, behind the batching layer, and
//! behind batching and the cache (as `Database::session_store` builds it), and that last one
//! again in a table of another name (on Postgres in a schema of its own), so every statement
//! is checked renamed. Each check gets a store on a scratch database of its own.
//!
//! Postgres runs when `LATCH_TEST_POSTGRES_URL` names a server (a fresh database is made per
//! test and dropped after it); without it those tests pass as skipped, unless
//! `LATCH_REQUIRE_POSTGRES=1` makes that a failure.

#![cfg(all(feature = "sqlite", feature = "postgres"))]

use std::sync::{Arc, Mutex, PoisonError};

mod common;

use common::Scratch;
use latch::testing::contract;
use latch::{
    Database, DatabaseConfig, PostgresStore, SessionConfig, SessionStore, SqliteStore, Table,
};

/// The stores under test.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Sqlite,
    SqliteBatched,
    SqliteCached,
    Postgres,
    PostgresBatched,
    PostgresCached,
    SqliteNamed,
    PostgresNamed,
}

/// A store on a scratch database of its own.
struct Fixture {
    store: Arc<dyn SessionStore>,
    scratch: Scratch,
}

impl Fixture {
    fn is_postgres(kind: Kind) -> bool {
        matches!(
            kind,
            Kind::Postgres | Kind::PostgresBatched | Kind::PostgresCached | Kind::PostgresNamed
        )
    }

    async fn open(kind: Kind) -> Option<Self> {
        let scratch = match kind {
            Kind::Sqlite | Kind::SqliteBatched | Kind::SqliteCached | Kind::SqliteNamed => {
                Scratch::sqlite().await
            }
            Kind::Postgres | Kind::PostgresBatched | Kind::PostgresCached | Kind::PostgresNamed => {
                Scratch::postgres().await?
            }
        };
        let database = Database::connect(&DatabaseConfig {
            url: scratch.url.clone(),
            ..DatabaseConfig::default()
        })
        .await
        .expect("connect");
        let store: Arc<dyn SessionStore> = match (kind, &database) {
            (Kind::Sqlite, Database::Sqlite(pool)) => {
                Arc::new(SqliteStore::open(pool.clone()).await.expect("open"))
            }
            (Kind::Postgres, Database::Postgres(pool)) => {
                Arc::new(PostgresStore::open(pool.clone()).await.expect("open"))
            }
            // Without a cache, `session_store` is the store behind the batching layer.
            (Kind::SqliteBatched | Kind::PostgresBatched, _) => {
                let config = SessionConfig {
                    cache_capacity: 0,
                    ..SessionConfig::default()
                };
                database
                    .session_store(&Table::default(), &config)
                    .await
                    .expect("open")
            }
            (Kind::SqliteCached | Kind::PostgresCached, _) => {
                let config = SessionConfig {
                    cache_capacity: 100,
                    ..SessionConfig::default()
                };
                database
                    .session_store(&Table::default(), &config)
                    .await
                    .expect("open")
            }
            (Kind::SqliteNamed | Kind::PostgresNamed, _) => {
                let mut table = Table::new("app_sessions").expect("a plain name");
                if let Kind::PostgresNamed = kind {
                    table = table.in_schema("auth").expect("a plain name");
                }
                let config = SessionConfig {
                    cache_capacity: 100,
                    ..SessionConfig::default()
                };
                database.session_store(&table, &config).await.expect("open")
            }
            (kind, database) => panic!("{kind:?} on {database:?}"),
        };
        Some(Self { store, scratch })
    }
}

/// Runs the whole contract on stores of `kind`, each check on a fresh scratch database, and
/// drops the databases afterwards, even when a check fails.
async fn run(kind: Kind) {
    if Fixture::is_postgres(kind) {
        // Skipped (or a failure, if Postgres is required) without a server.
        match Scratch::postgres().await {
            Some(probe) => probe.finish().await,
            None => return,
        }
    }
    let scratches: Arc<Mutex<Vec<Scratch>>> = Arc::default();
    let made = Arc::clone(&scratches);
    let outcome = tokio::spawn(contract::check(move || {
        let made = Arc::clone(&made);
        async move {
            let fixture = Fixture::open(kind).await.expect("a scratch database");
            made.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(fixture.scratch);
            fixture.store
        }
    }))
    .await;
    let scratches = std::mem::take(&mut *scratches.lock().unwrap_or_else(PoisonError::into_inner));
    for scratch in scratches {
        scratch.finish().await;
    }
    match outcome {
        Ok(checked) => {
            // latch's stores offer the purge and the per-user index: every check ran.
            assert!(
                checked.expired_deletion && checked.user_index,
                "{checked:?}"
            );
            assert_eq!(checked.checks, 22, "{checked:?}");
        }
        Err(error) => std::panic::resume_unwind(error.into_panic()),
    }
}

macro_rules! contract {
    ($($name:ident: $kind:ident),* $(,)?) => {
        $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            run(Kind::$kind).await;
        })*
    };
}

contract!(
    sqlite: Sqlite,
    sqlite_batched: SqliteBatched,
    sqlite_cached: SqliteCached,
    postgres: Postgres,
    postgres_batched: PostgresBatched,
    postgres_cached: PostgresCached,
    sqlite_named: SqliteNamed,
    postgres_named: PostgresNamed,
);

/// The in-memory store keeps the same contract.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory() {
    let checked = contract::check(|| async { latch::MemoryStore::new() }).await;
    assert!(
        checked.expired_deletion && checked.user_index,
        "{checked:?}"
    );
    assert_eq!(checked.checks, 22, "{checked:?}");
}
