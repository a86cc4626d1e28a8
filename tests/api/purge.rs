//! The purge: the one-pass function, its batches, and the background task.

use std::sync::Arc;
use std::time::Duration;

use latch::purge::purge_expired;
use latch::time::OffsetDateTime;
use latch::{
    ExpiredDeletion, IdHash, MemoryStore, PostgresStore, Record, Rekeyed, SessionConfig,
    SessionData, SessionId, SessionManager, SessionStore, StoreError,
};
use serde_json::json;

use crate::helpers::{Backend, TestApp, TestDb, backend_tests};

backend_tests!(
    a_purge_pass_removes_expired_sessions_and_keeps_live_ones,
    a_purge_pass_works_through_a_backlog_in_batches,
    the_background_task_purges_on_its_interval,
);

/// The purge of latch's own stores, which always have one.
fn expired(store: &dyn SessionStore) -> &dyn ExpiredDeletion {
    store.expired_deletion().expect("latch's stores purge")
}

/// Stores `count` sessions directly, expiring `offset_ms` from now (negative: already expired).
async fn seed(app: &TestApp, count: usize, offset_ms: i64) -> Vec<SessionId> {
    let store = app.store();
    let now = OffsetDateTime::now_utc();
    let mut ids = Vec::with_capacity(count);
    for _ in 0..count {
        let id = SessionId::generate();
        let record = Record {
            data: SessionData::new(),
            version: 0,
            created_at: now - latch::time::Duration::milliseconds(10_000),
            expires_at: now + latch::time::Duration::milliseconds(offset_ms),
            user: None,
        };
        assert!(store.create(&id.hash(), &record).await.expect("create"));
        ids.push(id);
    }
    ids
}

async fn a_purge_pass_removes_expired_sessions_and_keeps_live_ones(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    seed(&app, 5, -1000).await;
    let live = seed(&app, 3, 60_000).await;

    let removed = purge_expired(
        expired(app.store().as_ref()),
        OffsetDateTime::now_utc(),
        1000,
    )
    .await
    .expect("purge");

    assert_eq!(removed, 5);
    let rows = app.rows().await;
    assert_eq!(rows.len(), 3);
    for id in &live {
        assert!(app.row_for(id).await.is_some());
    }
}

async fn a_purge_pass_works_through_a_backlog_in_batches(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    seed(&app, 25, -1000).await;
    seed(&app, 2, 60_000).await;
    let store = app.store();

    let one_batch = expired(store.as_ref())
        .delete_expired(OffsetDateTime::now_utc(), 10)
        .await
        .expect("batch");
    assert_eq!(one_batch, 10, "a batch deletes at most its limit");
    let rest = purge_expired(expired(store.as_ref()), OffsetDateTime::now_utc(), 4)
        .await
        .expect("purge");

    assert_eq!(rest, 15, "the pass keeps going until the backlog is gone");
    assert_eq!(app.rows().await.len(), 2);
}

async fn the_background_task_purges_on_its_interval(backend: Backend) {
    let settings = [("session.purge_interval", json!(1))];
    let Some(app) = TestApp::spawn_with(backend, &settings).await else {
        return;
    };
    seed(&app, 4, -1000).await;
    seed(&app, 1, 60_000).await;

    let mut remaining = usize::MAX;
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        remaining = app.rows().await.len();
        if remaining == 1 {
            break;
        }
    }

    assert_eq!(
        remaining, 1,
        "the expired rows were purged in the background"
    );
}

/// Sessions in memory, whose purge fails on its first call, then succeeds; it counts the calls.
#[derive(Default)]
struct FlakyPurge {
    sessions: MemoryStore,
    purge_calls: std::sync::atomic::AtomicUsize,
}

#[latch::async_trait]
impl SessionStore for FlakyPurge {
    async fn create(&self, id: &IdHash, record: &Record) -> Result<bool, StoreError> {
        self.sessions.create(id, record).await
    }
    async fn load(&self, id: &IdHash, now: OffsetDateTime) -> Result<Option<Record>, StoreError> {
        self.sessions.load(id, now).await
    }
    async fn save(
        &self,
        id: &IdHash,
        record: &Record,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        self.sessions.save(id, record, now).await
    }
    async fn touch(
        &self,
        id: &IdHash,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        self.sessions.touch(id, expires_at, now).await
    }
    async fn rekey(
        &self,
        old: &IdHash,
        new: &IdHash,
        record: &Record,
        now: OffsetDateTime,
    ) -> Result<Rekeyed, StoreError> {
        self.sessions.rekey(old, new, record, now).await
    }
    async fn delete(&self, id: &IdHash) -> Result<(), StoreError> {
        self.sessions.delete(id).await
    }
    fn expired_deletion(&self) -> Option<&dyn ExpiredDeletion> {
        Some(self)
    }
}

#[latch::async_trait]
impl ExpiredDeletion for FlakyPurge {
    async fn delete_expired(&self, now: OffsetDateTime, limit: u32) -> Result<u64, StoreError> {
        let call = self
            .purge_calls
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if call == 0 {
            Err(StoreError::unavailable("the database timed out"))
        } else {
            self.sessions.delete_expired(now, limit).await
        }
    }
}

#[tokio::test]
async fn the_background_task_survives_a_failed_pass() {
    let store = Arc::new(FlakyPurge::default());
    let config = SessionConfig {
        purge_interval: 1,
        ..SessionConfig::default()
    };
    let rocket = rocket::custom(rocket::Config::figment().merge(("log_level", "off")))
        .manage(SessionManager::new(store.clone(), config))
        .attach(latch::Latch::fairing());
    let client = rocket::local::asynchronous::Client::untracked(rocket)
        .await
        .expect("launch");

    tokio::time::sleep(Duration::from_millis(2600)).await;

    let calls = store.purge_calls.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        calls >= 2,
        "the pass after the failure ran too ({calls} calls)"
    );
    client.terminate().await;
}

/// However many rows have expired, a Postgres purge batch reads only the rows it deletes: the
/// `expires_at` index to find them, the primary key to delete them, never the whole table.
#[tokio::test]
async fn a_postgres_purge_batch_does_not_scan_the_table() {
    let Some((_db, pool)) = TestDb::seeded_postgres(50_000, "i").await else {
        return;
    };
    sqlx::query("analyze sessions")
        .execute(&pool)
        .await
        .expect("analyze");

    let explain = format!("explain {}", PostgresStore::PURGE_BATCH);
    let plan: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(explain))
        .bind(latch_walkthrough::clock::now_ms())
        .bind(1000_i64)
        .fetch_all(&pool)
        .await
        .expect("explain");
    let plan = plan.join("\n");

    assert!(!plan.contains("Seq Scan"), "{plan}");
    assert!(plan.contains("sessions_expires_at_idx"), "{plan}");
    assert!(plan.contains("sessions_pkey"), "{plan}");
}
