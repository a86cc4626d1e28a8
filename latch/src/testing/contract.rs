//! The store contract as checks any store can run: what every [`SessionStore`] promises, and
//! what its [`ExpiredDeletion`] and [`UserIndex`] promise when it offers them. latch runs it on
//! its own stores; a store of another kind runs it with one call in a test of its own:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // In a `#[tokio::test]`: each check gets a fresh store from the closure.
//! let checked = latch::testing::contract::check(|| async { latch::MemoryStore::new() }).await;
//! assert!(checked.expired_deletion && checked.user_index);
//! # }
//! ```
//!
//! A check that fails panics, naming itself; its assertion's message is printed above.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::json;
use time::{Duration, OffsetDateTime};

use crate::{
    ClientInfo, ExpiredDeletion, Handle, IdHash, Record, Rekeyed, Revoke, SessionData, SessionId,
    SessionStore, SignedIn, UserIndex,
};

/// What [`check`] ran: assert on it, or a store that forgot to offer its purge or index (a
/// wrapper that does not hand out its inner store's, say) passes without their checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
#[non_exhaustive]
pub struct Checked {
    /// How many checks ran (and passed).
    pub checks: usize,
    /// Whether the store offered an [`ExpiredDeletion`], and so its checks ran.
    pub expired_deletion: bool,
    /// Whether the store offered a [`UserIndex`], and so its checks ran.
    pub user_index: bool,
}

type CheckFuture = Pin<Box<dyn Future<Output = ()> + Send>>;
type Check = (&'static str, fn(Arc<dyn SessionStore>) -> CheckFuture);

macro_rules! checks {
    ($($check:ident),* $(,)?) => {
        &[$((stringify!($check), |store| Box::pin($check(store)) as CheckFuture)),*]
    };
}

/// What every store promises.
const SESSION_CHECKS: &[Check] = checks!(
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
    concurrent_writes_to_many_sessions_all_land,
    loads_released_at_once_each_get_their_own_answer,
);

/// What a store's [`ExpiredDeletion`] promises.
const EXPIRED_DELETION_CHECKS: &[Check] =
    checks!(delete_expired_takes_only_expired_rows_in_batches);

/// What a store's [`UserIndex`] promises.
const USER_INDEX_CHECKS: &[Check] = checks!(
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

/// Runs every check of the contract, each on a fresh, empty store from `new_store`: the
/// per-session checks always, and those of the purge and the per-user index when the store
/// offers them ([`SessionStore::expired_deletion`], [`SessionStore::user_index`]). Call it
/// inside a Tokio runtime (`#[tokio::test]`); the checks spawn tasks on it.
///
/// # Panics
///
/// When a check fails, naming the check.
pub async fn check<S, F, Fut>(mut new_store: F) -> Checked
where
    S: SessionStore,
    F: FnMut() -> Fut,
    Fut: Future<Output = S>,
{
    let mut checked = Checked {
        checks: 0,
        expired_deletion: false,
        user_index: false,
    };
    for (index, (name, check)) in SESSION_CHECKS.iter().enumerate() {
        let store: Arc<dyn SessionStore> = Arc::new(new_store().await);
        if index == 0 {
            checked.expired_deletion = store.expired_deletion().is_some();
            checked.user_index = store.user_index().is_some();
        }
        run(name, *check, store).await;
        checked.checks += 1;
    }
    let optional = [
        (checked.expired_deletion, EXPIRED_DELETION_CHECKS),
        (checked.user_index, USER_INDEX_CHECKS),
    ];
    for (offered, checks) in optional {
        if !offered {
            continue;
        }
        for (name, check) in checks {
            run(name, *check, Arc::new(new_store().await)).await;
            checked.checks += 1;
        }
    }
    checked
}

/// Runs one check on its own task, so that its failure can be named.
async fn run(
    name: &str,
    check: fn(Arc<dyn SessionStore>) -> CheckFuture,
    store: Arc<dyn SessionStore>,
) {
    let outcome = tokio::spawn(check(store)).await;
    if let Err(error) = outcome {
        if error.is_panic() {
            panic!("the store contract's check `{name}` failed (its assertion is printed above)");
        }
        panic!("the store contract's check `{name}` did not finish: {error}");
    }
}

fn users(store: &dyn SessionStore) -> &dyn UserIndex {
    store
        .user_index()
        .expect("the store offered a user index at the first check, and now it does not")
}

fn expired(store: &dyn SessionStore) -> &dyn ExpiredDeletion {
    store
        .expired_deletion()
        .expect("the store offered an expired deletion at the first check, and now it does not")
}

/// One second.
const SECOND: Duration = Duration::SECOND;
/// The smallest step a store keeps.
const MILLISECOND: Duration = Duration::MILLISECOND;
/// A fixed "now" (in January 2027), whole to the millisecond as the stores keep times.
const NOW: OffsetDateTime = match OffsetDateTime::from_unix_timestamp(1_800_000_000) {
    Ok(now) => now,
    Err(_) => panic!("a time in range"),
};

fn data(value: serde_json::Value) -> SessionData {
    match value {
        serde_json::Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn record(name: &str, version: i64, expires_at: OffsetDateTime) -> Record {
    Record {
        data: data(json!({ "name": name })),
        version,
        created_at: NOW,
        expires_at,
        user: None,
    }
}

/// `record(..)` signed in as `user_id` at `NOW`, with a fresh handle.
fn signed_in(user_id: &str, name: &str, version: i64, expires_at: OffsetDateTime) -> Record {
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
        users(store)
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

async fn a_created_session_loads_as_stored(store: Arc<dyn SessionStore>) {
    let id = new_id();
    let stored = record("Ada", 0, NOW + 60 * SECOND);
    assert!(store.create(&id, &stored).await.expect("create"));
    assert_eq!(store.load(&id, NOW).await.expect("load"), Some(stored));
    assert_eq!(store.load(&new_id(), NOW).await.expect("load"), None);
}

async fn create_refuses_an_id_in_use(store: Arc<dyn SessionStore>) {
    let id = new_id();
    let first = record("Ada", 0, NOW + 60 * SECOND);
    assert!(store.create(&id, &first).await.expect("create"));
    let second = record("Mallory", 0, NOW + 60 * SECOND);
    assert!(!store.create(&id, &second).await.expect("create"));
    assert_eq!(store.load(&id, NOW).await.expect("load"), Some(first));
}

async fn an_expired_session_is_no_session(store: Arc<dyn SessionStore>) {
    let id = new_id();
    let deadline = NOW + 10 * SECOND;
    assert!(
        store
            .create(&id, &record("Ada", 0, deadline))
            .await
            .expect("create")
    );
    assert!(
        store
            .load(&id, deadline - MILLISECOND)
            .await
            .expect("load")
            .is_some()
    );
    assert_eq!(store.load(&id, deadline).await.expect("load"), None);
    let later = store
        .load_unconfirmed(&id, deadline + MILLISECOND)
        .await
        .expect("load");
    assert_eq!(later, None);
}

async fn save_needs_the_version_it_follows(store: Arc<dyn SessionStore>) {
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

async fn save_never_revives_an_ended_session(store: Arc<dyn SessionStore>) {
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

async fn touch_only_moves_the_deadline_forward(store: Arc<dyn SessionStore>) {
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

async fn rekey_moves_the_session_and_its_new_data(store: Arc<dyn SessionStore>) {
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

async fn rekey_from_a_stale_version_is_gone(store: Arc<dyn SessionStore>) {
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

async fn rekey_onto_an_id_in_use_changes_nothing(store: Arc<dyn SessionStore>) {
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

async fn delete_removes_and_repeats_harmlessly(store: Arc<dyn SessionStore>) {
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

async fn delete_expired_takes_only_expired_rows_in_batches(store: Arc<dyn SessionStore>) {
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
    assert_eq!(
        expired(&*store)
            .delete_expired(NOW, 5)
            .await
            .expect("purge"),
        5
    );
    assert_eq!(
        expired(&*store)
            .delete_expired(NOW, 5)
            .await
            .expect("purge"),
        2
    );
    assert_eq!(
        expired(&*store)
            .delete_expired(NOW, 5)
            .await
            .expect("purge"),
        0
    );
    for id in &live {
        assert!(store.load(id, NOW).await.expect("load").is_some());
    }
}

async fn concurrent_writes_to_many_sessions_all_land(store: Arc<dyn SessionStore>) {
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
async fn loads_released_at_once_each_get_their_own_answer(store: Arc<dyn SessionStore>) {
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

async fn a_session_created_signed_in_loads_with_its_user(store: Arc<dyn SessionStore>) {
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
    let listed = users(&*store)
        .user_sessions("ada", Some(&ada), NOW)
        .await
        .expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].current, listed[0].last_seen), (true, NOW));
}

async fn sign_in_moves_the_session_to_its_user(store: Arc<dyn SessionStore>) {
    let (old, new) = (new_id(), new_id());
    let deadline = NOW + 60 * SECOND;
    store
        .create(&old, &record("anonymous", 0, deadline))
        .await
        .expect("create");
    store.load(&old, NOW).await.expect("load");
    let ada = signed_in("ada", "Ada", 1, deadline);

    let moved = users(&*store).sign_in(Some(&old), &new, &ada, NOW).await;

    assert_eq!(moved.expect("sign in"), Rekeyed::Done);
    assert_eq!(store.load(&old, NOW).await.expect("load"), None);
    assert_eq!(store.load(&new, NOW).await.expect("load"), Some(ada));
    // From a stale version, or a session that is gone: nothing happens.
    let again = signed_in("ada", "Ada", 1, deadline);
    let stale = users(&*store)
        .sign_in(Some(&new), &new_id(), &again, NOW)
        .await;
    assert_eq!(stale.expect("sign in"), Rekeyed::Gone);
    let gone = users(&*store)
        .sign_in(Some(&old), &new_id(), &again, NOW)
        .await;
    assert_eq!(gone.expect("sign in"), Rekeyed::Gone);
}

async fn sign_in_without_a_session_creates_one(store: Arc<dyn SessionStore>) {
    let (id, ada) = sign_in_new(store.as_ref(), "ada", "Ada").await;
    assert_eq!(store.load(&id, NOW).await.expect("load"), Some(ada));

    let taken = users(&*store)
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

async fn rekey_keeps_or_clears_the_user_but_never_changes_it(store: Arc<dyn SessionStore>) {
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
        users(&*store)
            .user_sessions("ada", None, NOW)
            .await
            .expect("list"),
        vec![]
    );
}

async fn a_users_sessions_are_listed_with_the_asking_one_marked(store: Arc<dyn SessionStore>) {
    let (laptop, laptop_record) = sign_in_new(store.as_ref(), "ada", "Ada").await;
    let (_, phone_record) = sign_in_new(store.as_ref(), "ada", "Ada on the phone").await;
    sign_in_new(store.as_ref(), "grace", "Grace").await;
    let anonymous = new_id();
    store
        .create(&anonymous, &record("x", 0, NOW + 60 * SECOND))
        .await
        .expect("create");
    let expired = new_id();
    users(&*store)
        .sign_in(
            None,
            &expired,
            &signed_in("ada", "Ada", 0, NOW + SECOND),
            NOW,
        )
        .await
        .expect("sign in");

    let devices = users(&*store)
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
    let nobody = users(&*store).user_sessions("nobody", None, NOW).await;
    assert_eq!(nobody.expect("list"), vec![]);
}

async fn last_seen_follows_writes_and_touches(store: Arc<dyn SessionStore>) {
    let (id, ada) = sign_in_new(store.as_ref(), "ada", "Ada").await;
    let last_seen = |store: Arc<dyn SessionStore>| async move {
        let devices = users(&*store)
            .user_sessions("ada", None, NOW)
            .await
            .expect("list");
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

async fn revoke_by_handle_ends_only_the_users_own_session(store: Arc<dyn SessionStore>) {
    let (ada, ada_record) = sign_in_new(store.as_ref(), "ada", "Ada").await;
    store.load(&ada, NOW).await.expect("load");
    let handle = handle_of(&ada_record);

    let by_another_user = users(&*store)
        .revoke("mallory", Revoke::Handle(&handle))
        .await;
    assert_eq!(by_another_user.expect("revoke"), vec![]);
    assert!(store.load(&ada, NOW).await.expect("load").is_some());
    let unknown = users(&*store)
        .revoke("ada", Revoke::Handle(&Handle::generate()))
        .await;
    assert_eq!(unknown.expect("revoke"), vec![]);

    let revoked = users(&*store).revoke("ada", Revoke::Handle(&handle)).await;
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

async fn revoke_all_but_one_and_all(store: Arc<dyn SessionStore>) {
    let (first, _) = sign_in_new(store.as_ref(), "ada", "Ada").await;
    let (second, _) = sign_in_new(store.as_ref(), "ada", "Ada").await;
    let (third, _) = sign_in_new(store.as_ref(), "ada", "Ada").await;
    let (grace, _) = sign_in_new(store.as_ref(), "grace", "Grace").await;
    for id in [first, second, third, grace] {
        store.load(&id, NOW).await.expect("load");
    }

    let mut others = users(&*store)
        .revoke("ada", Revoke::AllBut(&first))
        .await
        .expect("revoke");
    others.sort_by_key(|id| id.0);
    let mut expected = vec![second, third];
    expected.sort_by_key(|id| id.0);
    assert_eq!(others, expected);
    assert!(store.load(&first, NOW).await.expect("load").is_some());
    assert_eq!(store.load(&second, NOW).await.expect("load"), None);

    let all = users(&*store)
        .revoke("ada", Revoke::All)
        .await
        .expect("revoke");
    assert_eq!(all, vec![first]);
    assert_eq!(store.load(&first, NOW).await.expect("load"), None);
    assert!(store.load(&grace, NOW).await.expect("load").is_some());
}

async fn bumping_the_auth_epoch_ends_older_sessions_but_the_kept_one(store: Arc<dyn SessionStore>) {
    let (kept, _) = sign_in_new(store.as_ref(), "ada", "Ada").await;
    let (older, _) = sign_in_new(store.as_ref(), "ada", "Ada").await;
    let (grace, _) = sign_in_new(store.as_ref(), "grace", "Grace").await;
    for id in [kept, older, grace] {
        store.load(&id, NOW).await.expect("load");
    }

    let ended = users(&*store)
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
    let mut all = users(&*store)
        .bump_auth_epoch("ada", None)
        .await
        .expect("bump");
    all.sort_by_key(|id| id.0);
    let mut expected = vec![kept, later];
    expected.sort_by_key(|id| id.0);
    assert_eq!(all, expected);
    assert_eq!(store.load(&later, NOW).await.expect("load"), None);
    assert!(store.load(&grace, NOW).await.expect("load").is_some());
}
