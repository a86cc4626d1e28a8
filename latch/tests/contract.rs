//! The store contract: what every `SessionStore` promises, checked the same way on the SQLite
//! and the Postgres store, each on its own, behind the batching layer, and behind batching and
//! the cache (as `Database::session_store` builds it).
//!
//! Postgres runs when `LATCH_TEST_POSTGRES_URL` names a server (a fresh database is made per
//! test and dropped after it); without it those tests pass as skipped, unless
//! `LATCH_REQUIRE_POSTGRES=1` makes that a failure.

#![cfg(all(feature = "sqlite", feature = "postgres"))]

use std::sync::Arc;

mod common;

use common::Scratch;
use latch::{
    Database, DatabaseConfig, IdHash, PostgresStore, Record, Rekeyed, SessionConfig, SessionData,
    SessionId, SessionStore, SqliteStore,
};
use serde_json::json;

/// The stores under test.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Sqlite,
    SqliteBatched,
    SqliteCached,
    Postgres,
    PostgresBatched,
    PostgresCached,
}

/// A store on a scratch database of its own.
struct Fixture {
    store: Arc<dyn SessionStore>,
    scratch: Scratch,
}

impl Fixture {
    async fn open(kind: Kind) -> Option<Self> {
        let scratch = match kind {
            Kind::Sqlite | Kind::SqliteBatched | Kind::SqliteCached => Scratch::sqlite().await,
            Kind::Postgres | Kind::PostgresBatched | Kind::PostgresCached => {
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
                database.session_store(&config).await.expect("open")
            }
            (Kind::SqliteCached | Kind::PostgresCached, _) => {
                let config = SessionConfig {
                    cache_capacity: 100,
                    ..SessionConfig::default()
                };
                database.session_store(&config).await.expect("open")
            }
            (kind, database) => panic!("{kind:?} on {database:?}"),
        };
        Some(Self { store, scratch })
    }

    /// Drops the Postgres database (its store's connections with it).
    async fn finish(self) {
        drop(self.store);
        self.scratch.finish().await;
    }
}

/// Runs `check` on a fresh store of `kind`, cleaning up even when it fails.
async fn run<F, Fut>(kind: Kind, check: F)
where
    F: FnOnce(Arc<dyn SessionStore>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(fixture) = Fixture::open(kind).await else {
        return;
    };
    let outcome = tokio::spawn(check(Arc::clone(&fixture.store))).await;
    fixture.finish().await;
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
}

/// Generates one test per check for each kind of store.
macro_rules! contract {
    ($($check:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() { super::run(super::Kind::Sqlite, super::checks::$check).await; })*
        }
        mod sqlite_batched {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() { super::run(super::Kind::SqliteBatched, super::checks::$check).await; })*
        }
        mod sqlite_cached {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() { super::run(super::Kind::SqliteCached, super::checks::$check).await; })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() { super::run(super::Kind::Postgres, super::checks::$check).await; })*
        }
        mod postgres_batched {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() { super::run(super::Kind::PostgresBatched, super::checks::$check).await; })*
        }
        mod postgres_cached {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() { super::run(super::Kind::PostgresCached, super::checks::$check).await; })*
        }
    };
}

contract!(
    a_created_session_loads_as_stored,
    create_refuses_an_id_in_use,
    an_expired_session_is_no_session,
    save_needs_the_version_it_follows,
    save_never_revives_an_ended_session,
    touch_only_moves_the_deadline_forward,
    rekey_moves_the_session_and_its_new_data,
    rekey_from_a_stale_version_is_gone,
    rekey_onto_an_id_in_use_changes_nothing,
    delete_removes_and_repeats_harmlessly,
    delete_expired_takes_only_expired_rows_in_batches,
    concurrent_writes_to_many_sessions_all_land,
);

/// One second, in the stores' milliseconds.
const SECOND: i64 = 1000;
/// A fixed "now" far from the edges of `i64`.
const NOW: i64 = 1_800_000_000_000;

fn data(value: serde_json::Value) -> SessionData {
    match value {
        serde_json::Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn record(name: &str, version: i64, expires_at: i64) -> Record {
    Record {
        data: data(json!({ "name": name })),
        version,
        created_at: NOW,
        expires_at,
    }
}

fn new_id() -> IdHash {
    SessionId::generate().hash()
}

mod checks {
    use super::*;

    pub async fn a_created_session_loads_as_stored(store: Arc<dyn SessionStore>) {
        let id = new_id();
        let stored = record("Ada", 0, NOW + 60 * SECOND);
        assert!(store.create(&id, &stored).await.expect("create"));
        assert_eq!(store.load(&id, NOW).await.expect("load"), Some(stored));
        assert_eq!(store.load(&new_id(), NOW).await.expect("load"), None);
    }

    pub async fn create_refuses_an_id_in_use(store: Arc<dyn SessionStore>) {
        let id = new_id();
        let first = record("Ada", 0, NOW + 60 * SECOND);
        assert!(store.create(&id, &first).await.expect("create"));
        let second = record("Mallory", 0, NOW + 60 * SECOND);
        assert!(!store.create(&id, &second).await.expect("create"));
        assert_eq!(store.load(&id, NOW).await.expect("load"), Some(first));
    }

    pub async fn an_expired_session_is_no_session(store: Arc<dyn SessionStore>) {
        let id = new_id();
        let deadline = NOW + 10 * SECOND;
        assert!(
            store
                .create(&id, &record("Ada", 0, deadline))
                .await
                .expect("create")
        );
        assert!(store.load(&id, deadline - 1).await.expect("load").is_some());
        assert_eq!(store.load(&id, deadline).await.expect("load"), None);
        let later = store
            .load_unconfirmed(&id, deadline + 1)
            .await
            .expect("load");
        assert_eq!(later, None);
    }

    pub async fn save_needs_the_version_it_follows(store: Arc<dyn SessionStore>) {
        let id = new_id();
        let deadline = NOW + 60 * SECOND;
        store
            .create(&id, &record("Ada", 0, deadline))
            .await
            .expect("create");
        let next = record("Grace", 1, deadline + SECOND);
        assert!(store.save(&id, &next, NOW).await.expect("save"));
        // A writer that also read version 0 lost the race.
        let stale = record("Mallory", 1, deadline);
        assert!(!store.save(&id, &stale, NOW).await.expect("save"));
        // Skipping a version is refused too.
        let ahead = record("Mallory", 3, deadline);
        assert!(!store.save(&id, &ahead, NOW).await.expect("save"));
        assert_eq!(store.load(&id, NOW).await.expect("load"), Some(next));
    }

    pub async fn save_never_revives_an_ended_session(store: Arc<dyn SessionStore>) {
        let expired = new_id();
        let deadline = NOW + SECOND;
        store
            .create(&expired, &record("Ada", 0, deadline))
            .await
            .expect("create");
        let revived = record("Ada", 1, NOW + 60 * SECOND);
        assert!(
            !store
                .save(&expired, &revived, deadline)
                .await
                .expect("save")
        );
        assert_eq!(store.load(&expired, deadline).await.expect("load"), None);

        let deleted = new_id();
        store
            .create(&deleted, &record("Ada", 0, NOW + 60 * SECOND))
            .await
            .expect("create");
        store.delete(&deleted).await.expect("delete");
        assert!(!store.save(&deleted, &revived, NOW).await.expect("save"));
        assert_eq!(store.load(&deleted, NOW).await.expect("load"), None);
    }

    pub async fn touch_only_moves_the_deadline_forward(store: Arc<dyn SessionStore>) {
        let id = new_id();
        let deadline = NOW + 60 * SECOND;
        let stored = record("Ada", 0, deadline);
        store.create(&id, &stored).await.expect("create");

        store
            .touch(&id, deadline + 30 * SECOND, NOW)
            .await
            .expect("touch");
        let touched = store.load(&id, NOW).await.expect("load").expect("live");
        assert_eq!(touched.expires_at, deadline + 30 * SECOND);
        assert_eq!((touched.data, touched.version), (stored.data, 0));

        store.touch(&id, deadline, NOW).await.expect("touch");
        let after = store.load(&id, NOW).await.expect("load").expect("live");
        assert_eq!(after.expires_at, deadline + 30 * SECOND, "moved back");

        // A touch neither conflicts with a write nor revives an ended session.
        assert!(
            store
                .save(&id, &record("Grace", 1, deadline), NOW)
                .await
                .expect("save")
        );
        store.delete(&id).await.expect("delete");
        store
            .touch(&id, deadline + 90 * SECOND, NOW)
            .await
            .expect("touch");
        assert_eq!(store.load(&id, NOW).await.expect("load"), None);
    }

    pub async fn rekey_moves_the_session_and_its_new_data(store: Arc<dyn SessionStore>) {
        let (old, new) = (new_id(), new_id());
        let deadline = NOW + 60 * SECOND;
        store
            .create(&old, &record("anonymous", 0, deadline))
            .await
            .expect("create");
        let signed_in = record("Ada", 1, deadline + SECOND);
        assert_eq!(
            store
                .rekey(&old, &new, &signed_in, NOW)
                .await
                .expect("rekey"),
            Rekeyed::Done
        );
        assert_eq!(store.load(&old, NOW).await.expect("load"), None);
        assert_eq!(store.load(&new, NOW).await.expect("load"), Some(signed_in));
    }

    pub async fn rekey_from_a_stale_version_is_gone(store: Arc<dyn SessionStore>) {
        let (old, new) = (new_id(), new_id());
        let deadline = NOW + 60 * SECOND;
        store
            .create(&old, &record("Ada", 0, deadline))
            .await
            .expect("create");
        let newer = record("Grace", 1, deadline);
        store.save(&old, &newer, NOW).await.expect("save");
        let from_stale = record("Mallory", 1, deadline);
        assert_eq!(
            store
                .rekey(&old, &new, &from_stale, NOW)
                .await
                .expect("rekey"),
            Rekeyed::Gone
        );
        assert_eq!(store.load(&old, NOW).await.expect("load"), Some(newer));
        assert_eq!(store.load(&new, NOW).await.expect("load"), None);

        // An expired session is gone as well.
        assert_eq!(
            store
                .rekey(&old, &new, &record("Ada", 2, deadline), deadline)
                .await
                .expect("rekey"),
            Rekeyed::Gone
        );
    }

    pub async fn rekey_onto_an_id_in_use_changes_nothing(store: Arc<dyn SessionStore>) {
        let (old, taken) = (new_id(), new_id());
        let deadline = NOW + 60 * SECOND;
        let mine = record("Ada", 0, deadline);
        let theirs = record("Grace", 0, deadline);
        store.create(&old, &mine).await.expect("create");
        store.create(&taken, &theirs).await.expect("create");
        assert_eq!(
            store
                .rekey(&old, &taken, &record("Ada", 1, deadline), NOW)
                .await
                .expect("rekey"),
            Rekeyed::IdTaken
        );
        assert_eq!(store.load(&old, NOW).await.expect("load"), Some(mine));
        assert_eq!(store.load(&taken, NOW).await.expect("load"), Some(theirs));
    }

    pub async fn delete_removes_and_repeats_harmlessly(store: Arc<dyn SessionStore>) {
        let (id, other) = (new_id(), new_id());
        let deadline = NOW + 60 * SECOND;
        store
            .create(&id, &record("Ada", 0, deadline))
            .await
            .expect("create");
        store
            .create(&other, &record("Grace", 0, deadline))
            .await
            .expect("create");
        store.delete(&id).await.expect("delete");
        store.delete(&id).await.expect("a second delete");
        store.delete(&new_id()).await.expect("an unknown ID");
        assert_eq!(store.load(&id, NOW).await.expect("load"), None);
        assert!(store.load(&other, NOW).await.expect("load").is_some());
    }

    pub async fn delete_expired_takes_only_expired_rows_in_batches(store: Arc<dyn SessionStore>) {
        let live: Vec<IdHash> = (0..3).map(|_| new_id()).collect();
        for id in &live {
            store
                .create(id, &record("live", 0, NOW + 60 * SECOND))
                .await
                .expect("create");
        }
        for i in 0..7 {
            store
                .create(&new_id(), &record("expired", 0, NOW - i * SECOND))
                .await
                .expect("create");
        }
        assert_eq!(store.delete_expired(NOW, 5).await.expect("purge"), 5);
        assert_eq!(store.delete_expired(NOW, 5).await.expect("purge"), 2);
        assert_eq!(store.delete_expired(NOW, 5).await.expect("purge"), 0);
        for id in &live {
            assert!(store.load(id, NOW).await.expect("load").is_some());
        }
    }

    pub async fn concurrent_writes_to_many_sessions_all_land(store: Arc<dyn SessionStore>) {
        let deadline = NOW + 60 * SECOND;
        let tasks: Vec<_> = (0..40)
            .map(|i| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    let id = new_id();
                    let name = format!("user{i}");
                    store
                        .create(&id, &record(&name, 0, deadline))
                        .await
                        .expect("create");
                    let saved = store
                        .save(&id, &record(&name, 1, deadline), NOW)
                        .await
                        .expect("save");
                    (id, name, saved)
                })
            })
            .collect();
        for task in tasks {
            let (id, name, saved) = task.await.expect("a writer");
            assert!(saved, "{name}");
            let loaded = store.load(&id, NOW).await.expect("load").expect("stored");
            assert_eq!(
                (loaded.version, loaded.data),
                (1, data(json!({ "name": name })))
            );
        }
    }
}
