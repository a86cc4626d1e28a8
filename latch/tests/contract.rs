//! The store contract: what every `SessionStore` promises, checked the same way on the SQLite
//! and the Postgres store, each on its own, behind the batching layer, and behind batching and
//! the cache (as `Database::session_store` builds it), and that last one again in a table of
//! another name (on Postgres in a schema of its own), so every statement is checked renamed.
//!
//! Postgres runs when `LATCH_TEST_POSTGRES_URL` names a server (a fresh database is made per
//! test and dropped after it); without it those tests pass as skipped, unless
//! `LATCH_REQUIRE_POSTGRES=1` makes that a failure.

#![cfg(all(feature = "sqlite", feature = "postgres"))]

use std::sync::Arc;

mod common;

use common::Scratch;
use latch::{
    ClientInfo, Database, DatabaseConfig, Handle, IdHash, PostgresStore, Record, Rekeyed, Revoke,
    SessionConfig, SessionData, SessionId, SessionStore, SignedIn, SqliteStore, Table,
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
    SqliteNamed,
    PostgresNamed,
}

/// A store on a scratch database of its own.
struct Fixture {
    store: Arc<dyn SessionStore>,
    scratch: Scratch,
}

impl Fixture {
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
        mod sqlite_named {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() { super::run(super::Kind::SqliteNamed, super::checks::$check).await; })*
        }
        mod postgres_named {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() { super::run(super::Kind::PostgresNamed, super::checks::$check).await; })*
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
    loads_released_at_once_each_get_their_own_answer,
    a_session_created_signed_in_loads_with_its_user,
    sign_in_moves_the_session_to_its_user,
    sign_in_without_a_session_creates_one,
    rekey_keeps_or_clears_the_user_but_never_changes_it,
    a_users_sessions_are_listed_with_the_asking_one_marked,
    last_seen_follows_writes_and_touches,
    revoke_by_handle_ends_only_the_users_own_session,
    revoke_all_but_one_and_all,
    bumping_the_auth_epoch_ends_older_sessions_but_the_kept_one,
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
        user: None,
    }
}

/// `record(..)` signed in as `user_id` at `NOW`, with a fresh handle.
fn signed_in(user_id: &str, name: &str, version: i64, expires_at: i64) -> Record {
    Record {
        user: Some(SignedIn {
            user_id: user_id.to_owned(),
            handle: Handle::generate(),
            signed_in_at: NOW,
            client: ClientInfo {
                user_agent: Some(format!("{name}'s browser")),
                address: Some("203.0.113.0/24".to_owned()),
            },
        }),
        ..record(name, version, expires_at)
    }
}

/// A session of `user_id` created signed in; returns its ID hash and record.
async fn sign_in_new(store: &dyn SessionStore, user_id: &str, name: &str) -> (IdHash, Record) {
    let id = new_id();
    let stored = signed_in(user_id, name, 0, NOW + 60 * SECOND);
    assert_eq!(
        store
            .sign_in(None, &id, &stored, NOW)
            .await
            .expect("sign in"),
        Rekeyed::Done
    );
    (id, stored)
}

fn handle_of(record: &Record) -> Handle {
    record.user.as_ref().expect("signed in").handle
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

        assert!(
            store
                .touch(&id, deadline + 30 * SECOND, NOW)
                .await
                .expect("touch"),
            "a later deadline moves"
        );
        let touched = store.load(&id, NOW).await.expect("load").expect("live");
        assert_eq!(touched.expires_at, deadline + 30 * SECOND);
        assert_eq!((touched.data, touched.version), (stored.data, 0));

        assert!(
            !store.touch(&id, deadline, NOW).await.expect("touch"),
            "an earlier deadline does not move"
        );
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
        assert!(
            !store
                .touch(&id, deadline + 90 * SECOND, NOW)
                .await
                .expect("touch"),
            "an ended session's deadline does not move"
        );
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

    /// Hundreds of loads at once, as a batching store serves them (many per query, of every
    /// batch size up to its limit): live, expired and unknown IDs, some asked for twice.
    pub async fn loads_released_at_once_each_get_their_own_answer(store: Arc<dyn SessionStore>) {
        let live: Vec<_> = (0..150).map(|i| (new_id(), format!("user{i}"))).collect();
        let expired = new_id();
        for (id, name) in &live {
            assert!(
                store
                    .create(id, &record(name, 0, NOW + 60 * SECOND))
                    .await
                    .expect("create")
            );
        }
        assert!(
            store
                .create(&expired, &record("gone", 0, NOW - SECOND))
                .await
                .expect("create")
        );

        // (id, expected name): every live one twice, the expired one and unknown ones in between.
        let mut asks: Vec<(IdHash, Option<String>)> = Vec::new();
        for (i, (id, name)) in live.iter().chain(live.iter()).enumerate() {
            asks.push((*id, Some(name.clone())));
            if i % 7 == 0 {
                asks.push((new_id(), None));
                asks.push((expired, None));
            }
        }
        let start = Arc::new(tokio::sync::Barrier::new(asks.len()));
        let tasks: Vec<_> = asks
            .into_iter()
            .map(|(id, expected)| {
                let (store, start) = (Arc::clone(&store), Arc::clone(&start));
                tokio::spawn(async move {
                    start.wait().await;
                    let loaded = store.load(&id, NOW).await.expect("load");
                    (loaded.map(|r| r.data), expected)
                })
            })
            .collect();
        for task in tasks {
            let (loaded, expected) = task.await.expect("a reader");
            assert_eq!(loaded, expected.map(|name| data(json!({ "name": name }))));
        }
    }

    pub async fn a_session_created_signed_in_loads_with_its_user(store: Arc<dyn SessionStore>) {
        let (ada, anonymous) = (new_id(), new_id());
        let ada_record = signed_in("ada", "Ada", 0, NOW + 60 * SECOND);
        let anonymous_record = record("x", 0, NOW + 60 * SECOND);
        let (a, b) = tokio::join!(
            store.create(&ada, &ada_record),
            store.create(&anonymous, &anonymous_record)
        );
        assert!(a.expect("create") && b.expect("create"));
        assert_eq!(store.load(&ada, NOW).await.expect("load"), Some(ada_record));
        assert_eq!(
            store.load(&anonymous, NOW).await.expect("load"),
            Some(anonymous_record)
        );
        let listed = store
            .user_sessions("ada", Some(&ada), NOW)
            .await
            .expect("list");
        assert_eq!(listed.len(), 1);
        assert_eq!((listed[0].current, listed[0].last_seen), (true, NOW));
    }

    pub async fn sign_in_moves_the_session_to_its_user(store: Arc<dyn SessionStore>) {
        let (old, new) = (new_id(), new_id());
        let deadline = NOW + 60 * SECOND;
        store
            .create(&old, &record("anonymous", 0, deadline))
            .await
            .expect("create");
        store.load(&old, NOW).await.expect("load");
        let ada = signed_in("ada", "Ada", 1, deadline);

        let moved = store.sign_in(Some(&old), &new, &ada, NOW).await;

        assert_eq!(moved.expect("sign in"), Rekeyed::Done);
        assert_eq!(store.load(&old, NOW).await.expect("load"), None);
        assert_eq!(store.load(&new, NOW).await.expect("load"), Some(ada));
        // From a stale version, or a session that is gone: nothing happens.
        let again = signed_in("ada", "Ada", 1, deadline);
        let stale = store.sign_in(Some(&new), &new_id(), &again, NOW).await;
        assert_eq!(stale.expect("sign in"), Rekeyed::Gone);
        let gone = store.sign_in(Some(&old), &new_id(), &again, NOW).await;
        assert_eq!(gone.expect("sign in"), Rekeyed::Gone);
    }

    pub async fn sign_in_without_a_session_creates_one(store: Arc<dyn SessionStore>) {
        let (id, ada) = sign_in_new(store.as_ref(), "ada", "Ada").await;
        assert_eq!(store.load(&id, NOW).await.expect("load"), Some(ada));

        let taken = store
            .sign_in(
                None,
                &id,
                &signed_in("mallory", "Mallory", 0, NOW + SECOND),
                NOW,
            )
            .await;

        assert_eq!(taken.expect("sign in"), Rekeyed::IdTaken);
        let kept = store.load(&id, NOW).await.expect("load").expect("live");
        assert_eq!(kept.user.map(|user| user.user_id).as_deref(), Some("ada"));
    }

    pub async fn rekey_keeps_or_clears_the_user_but_never_changes_it(store: Arc<dyn SessionStore>) {
        let (id, ada) = sign_in_new(store.as_ref(), "ada", "Ada").await;
        let deadline = NOW + 60 * SECOND;

        let (kept_id, kept) = (
            new_id(),
            Record {
                version: 1,
                ..ada.clone()
            },
        );
        let regenerated = store.rekey(&id, &kept_id, &kept, NOW).await;
        assert_eq!(regenerated.expect("rekey"), Rekeyed::Done);
        assert_eq!(store.load(&kept_id, NOW).await.expect("load"), Some(kept));

        let someone_else = Record {
            version: 2,
            ..signed_in("mallory", "Mallory", 0, deadline)
        };
        let switched = store.rekey(&kept_id, &new_id(), &someone_else, NOW).await;
        assert_eq!(switched.expect("rekey"), Rekeyed::Gone);

        let (out_id, signed_out) = (new_id(), record("", 2, deadline));
        let cleared = store.rekey(&kept_id, &out_id, &signed_out, NOW).await;
        assert_eq!(cleared.expect("rekey"), Rekeyed::Done);
        assert_eq!(
            store.load(&out_id, NOW).await.expect("load"),
            Some(signed_out)
        );
        assert_eq!(
            store.user_sessions("ada", None, NOW).await.expect("list"),
            vec![]
        );
    }

    pub async fn a_users_sessions_are_listed_with_the_asking_one_marked(
        store: Arc<dyn SessionStore>,
    ) {
        let (laptop, laptop_record) = sign_in_new(store.as_ref(), "ada", "Ada").await;
        let (_, phone_record) = sign_in_new(store.as_ref(), "ada", "Ada on the phone").await;
        sign_in_new(store.as_ref(), "grace", "Grace").await;
        let anonymous = new_id();
        store
            .create(&anonymous, &record("x", 0, NOW + 60 * SECOND))
            .await
            .expect("create");
        let expired = new_id();
        store
            .sign_in(
                None,
                &expired,
                &signed_in("ada", "Ada", 0, NOW + SECOND),
                NOW,
            )
            .await
            .expect("sign in");

        let devices = store
            .user_sessions("ada", Some(&laptop), NOW + 2 * SECOND)
            .await
            .expect("list");

        let mut seen: Vec<_> = devices
            .iter()
            .map(|device| (device.handle, device.current, device.client.clone()))
            .collect();
        seen.sort_by_key(|(_, current, _)| !current);
        let client_of = |r: &Record| r.user.as_ref().expect("signed in").client.clone();
        assert_eq!(
            seen,
            vec![
                (handle_of(&laptop_record), true, client_of(&laptop_record)),
                (handle_of(&phone_record), false, client_of(&phone_record)),
            ]
        );
        assert!(devices.iter().all(|device| device.signed_in_at == NOW));
        let nobody = store.user_sessions("nobody", None, NOW).await;
        assert_eq!(nobody.expect("list"), vec![]);
    }

    pub async fn last_seen_follows_writes_and_touches(store: Arc<dyn SessionStore>) {
        let (id, ada) = sign_in_new(store.as_ref(), "ada", "Ada").await;
        let last_seen = |store: Arc<dyn SessionStore>| async move {
            let devices = store.user_sessions("ada", None, NOW).await.expect("list");
            devices
                .iter()
                .map(|device| device.last_seen)
                .collect::<Vec<_>>()
        };
        assert_eq!(last_seen(Arc::clone(&store)).await, vec![NOW]);

        store
            .touch(&id, NOW + 120 * SECOND, NOW + 5 * SECOND)
            .await
            .expect("touch");
        assert_eq!(last_seen(Arc::clone(&store)).await, vec![NOW + 5 * SECOND]);

        let next = Record {
            version: 1,
            expires_at: NOW + 130 * SECOND,
            ..ada
        };
        assert!(
            store
                .save(&id, &next, NOW + 9 * SECOND)
                .await
                .expect("save")
        );
        assert_eq!(last_seen(Arc::clone(&store)).await, vec![NOW + 9 * SECOND]);
    }

    pub async fn revoke_by_handle_ends_only_the_users_own_session(store: Arc<dyn SessionStore>) {
        let (ada, ada_record) = sign_in_new(store.as_ref(), "ada", "Ada").await;
        store.load(&ada, NOW).await.expect("load");
        let handle = handle_of(&ada_record);

        let by_another_user = store.revoke("mallory", Revoke::Handle(&handle)).await;
        assert_eq!(by_another_user.expect("revoke"), vec![]);
        assert!(store.load(&ada, NOW).await.expect("load").is_some());
        let unknown = store
            .revoke("ada", Revoke::Handle(&Handle::generate()))
            .await;
        assert_eq!(unknown.expect("revoke"), vec![]);

        let revoked = store.revoke("ada", Revoke::Handle(&handle)).await;
        assert_eq!(revoked.expect("revoke"), vec![ada]);
        assert_eq!(store.load(&ada, NOW).await.expect("load"), None);
        // A request that loaded it before cannot bring it back.
        let late = Record {
            version: 1,
            ..ada_record
        };
        assert!(!store.save(&ada, &late, NOW).await.expect("save"));
        assert!(
            !store
                .touch(&ada, NOW + 90 * SECOND, NOW)
                .await
                .expect("touch")
        );
        assert_eq!(store.load(&ada, NOW).await.expect("load"), None);
    }

    pub async fn revoke_all_but_one_and_all(store: Arc<dyn SessionStore>) {
        let (first, _) = sign_in_new(store.as_ref(), "ada", "Ada").await;
        let (second, _) = sign_in_new(store.as_ref(), "ada", "Ada").await;
        let (third, _) = sign_in_new(store.as_ref(), "ada", "Ada").await;
        let (grace, _) = sign_in_new(store.as_ref(), "grace", "Grace").await;
        for id in [first, second, third, grace] {
            store.load(&id, NOW).await.expect("load");
        }

        let mut others = store
            .revoke("ada", Revoke::AllBut(&first))
            .await
            .expect("revoke");
        others.sort_by_key(|id| id.0);
        let mut expected = vec![second, third];
        expected.sort_by_key(|id| id.0);
        assert_eq!(others, expected);
        assert!(store.load(&first, NOW).await.expect("load").is_some());
        assert_eq!(store.load(&second, NOW).await.expect("load"), None);

        let all = store.revoke("ada", Revoke::All).await.expect("revoke");
        assert_eq!(all, vec![first]);
        assert_eq!(store.load(&first, NOW).await.expect("load"), None);
        assert!(store.load(&grace, NOW).await.expect("load").is_some());
    }

    pub async fn bumping_the_auth_epoch_ends_older_sessions_but_the_kept_one(
        store: Arc<dyn SessionStore>,
    ) {
        let (kept, _) = sign_in_new(store.as_ref(), "ada", "Ada").await;
        let (older, _) = sign_in_new(store.as_ref(), "ada", "Ada").await;
        let (grace, _) = sign_in_new(store.as_ref(), "grace", "Grace").await;
        for id in [kept, older, grace] {
            store.load(&id, NOW).await.expect("load");
        }

        let ended = store
            .bump_auth_epoch("ada", Some(&kept))
            .await
            .expect("bump");

        assert_eq!(ended, vec![older]);
        assert_eq!(store.load(&older, NOW).await.expect("load"), None);
        assert!(store.load(&kept, NOW).await.expect("load").is_some());
        assert!(store.load(&grace, NOW).await.expect("load").is_some());

        // Signed in after the bump: under the new epoch, until the next bump ends it all.
        let (later, _) = sign_in_new(store.as_ref(), "ada", "Ada").await;
        assert!(store.load(&later, NOW).await.expect("load").is_some());
        let mut all = store.bump_auth_epoch("ada", None).await.expect("bump");
        all.sort_by_key(|id| id.0);
        let mut expected = vec![kept, later];
        expected.sort_by_key(|id| id.0);
        assert_eq!(all, expected);
        assert_eq!(store.load(&later, NOW).await.expect("load"), None);
        assert!(store.load(&grace, NOW).await.expect("load").is_some());
    }
}
