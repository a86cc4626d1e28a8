//! An in-process cache in front of a store: reads of a cached session cost no query at all.
//! On SQLite this process is the only writer; on Postgres other instances' changes arrive as
//! notifications (see `listen.rs`) and evict what they touch.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use quick_cache::Weighter;
use quick_cache::sync::Cache;

use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

use super::{
    ExpiredDeletion, Loaded, Record, Rekeyed, SessionStore, StoreError, UserIndex, no_user_index,
};
use crate::user::{Device, Revoke, SignedIn};
use crate::{IdHash, now_ms};

/// Locks guarding the cache's per-session write counters (striped by ID hash, like the
/// session layer's write locks).
const STRIPES: usize = 1024;

/// Serves `load` from memory when it can, and keeps the memory in step with every write.
///
/// Every write through this value updates the cache; a write by another process is seen only if
/// that process announces it (see below). A row deleted behind its back because it expired (the
/// purge, `latch purge`) is fine: a cached session past its deadline is never served.
///
/// Races between a slow read and a write are settled with a counter per stripe of sessions:
/// a write bumps it before touching the database, and a read only fills the cache if the
/// counter did not move while it was reading, so a stale row never replaces a newer one.
///
/// Where other processes write too (Postgres), they announce each change and the instance calls
/// `invalidate`. The cache then serves reads only under a lease that the
/// listener renews while it can hear those announcements; when its connection drops or stops
/// answering, the lease runs out (or is revoked) and reads go to the database.
pub struct CachedStore<S> {
    inner: S,
    /// Shared with the change listener, which holds it weakly: it ends once the store is gone.
    memory: Arc<Memory>,
}

/// What the cache keeps and knows, apart from the store it wraps: what a change listener
/// reaches (see `listen`).
pub(crate) struct Memory {
    cache: Cache<IdHash, Compact, Slots>,
    writes: Box<[Mutex<u64>]>,
    /// Until when (Unix ms) the cache may serve reads: `i64::MAX` for a sole writer, a lease the
    /// change listener renews otherwise, 0 while it cannot hear changes.
    trusted_until: AtomicI64,
    /// Where others write too: what a cache hit waits for before it is served.
    barrier: Option<Barrier>,
}

impl<S: SessionStore> CachedStore<S> {
    /// Caches up to `capacity` sessions (the least used make room), for a store this process is
    /// the only writer of. A session whose data takes more than 256 bytes counts as one more
    /// for every further 256, so `capacity` bounds the cache's memory, not only its length.
    pub fn new(inner: S, capacity: usize) -> Self {
        let store = Self::distrusted(inner, capacity);
        store.memory.trusted_until.store(i64::MAX, Ordering::SeqCst);
        store
    }

    /// Like [`new`](Self::new), but reading through until [`trust_for`](Self::trust_for) is
    /// called: for a store others write to, once their changes can be heard.
    pub(crate) fn distrusted(inner: S, capacity: usize) -> Self {
        Self {
            inner,
            memory: Arc::new(Memory {
                cache: Cache::with_weighter(capacity, capacity as u64, Slots),
                writes: (0..STRIPES).map(|_| Mutex::new(0)).collect(),
                trusted_until: AtomicI64::new(0),
                barrier: None,
            }),
        }
    }

    #[cfg_attr(
        not(feature = "postgres"),
        expect(dead_code, reason = "only Postgres has other writers")
    )]
    /// Makes every cache hit wait at `barrier` first (see [`Barrier`]).
    pub(crate) fn with_barrier(mut self, barrier: Barrier) -> Self {
        if let Some(memory) = Arc::get_mut(&mut self.memory) {
            memory.barrier = Some(barrier);
        }
        self
    }

    /// What the change listener reaches.
    #[cfg_attr(
        not(feature = "postgres"),
        expect(dead_code, reason = "only Postgres has other writers")
    )]
    pub(crate) fn memory(&self) -> &Arc<Memory> {
        &self.memory
    }

    /// Reads `id` from the database, and caches it unless a write overtook the read.
    async fn read_through(
        &self,
        id: &IdHash,
        now: OffsetDateTime,
    ) -> Result<Option<Record>, StoreError> {
        let ticket = *self.memory.counter(id);
        let loaded = self.inner.load(id, now).await?;
        let counter = self.memory.counter(id);
        match &loaded {
            Some(record) if *counter == ticket => self.memory.insert(id, record),
            _ => {
                self.memory.cache.remove(id);
            }
        }
        Ok(loaded)
    }
}

impl Memory {
    /// The cached, live copy of `id`, if the cache may serve it now.
    fn cached(&self, id: &IdHash, now: OffsetDateTime) -> Option<Record> {
        if !self.is_trusted() {
            return None;
        }
        self.cache
            .get(id)
            .filter(|cached| cached.expires_at > now)
            .and_then(|cached| cached.to_record())
    }

    /// Forgets `id`, which another process changed or deleted, or a per-user operation ended.
    pub(crate) fn invalidate(&self, id: &IdHash) {
        let ticket = self.start_write(id);
        self.finish_write(id, ticket, None);
    }

    #[cfg_attr(
        not(feature = "postgres"),
        expect(dead_code, reason = "only Postgres has other writers")
    )]
    /// Serves reads from memory for the next `lease`. Coming back from distrust it starts
    /// empty: nothing cached before is known to be current, and no read already under way may
    /// fill it.
    pub(crate) fn trust_for(&self, lease: Duration) {
        if !self.is_trusted() {
            for stripe in &self.writes {
                *stripe.lock().unwrap_or_else(PoisonError::into_inner) += 1;
            }
            self.cache.clear();
        }
        let lease = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        self.trusted_until
            .store(now_ms().saturating_add(lease), Ordering::SeqCst);
    }

    #[cfg_attr(
        not(feature = "postgres"),
        expect(dead_code, reason = "only Postgres has other writers")
    )]
    /// Stops serving from memory (other processes' changes can no longer be heard).
    pub(crate) fn distrust(&self) {
        self.trusted_until.store(0, Ordering::SeqCst);
        self.cache.clear();
    }

    fn is_trusted(&self) -> bool {
        now_ms() < self.trusted_until.load(Ordering::SeqCst)
    }

    fn counter(&self, id: &IdHash) -> MutexGuard<'_, u64> {
        let stripe = usize::from(u16::from_le_bytes([id.0[2], id.0[3]])) % self.writes.len();
        // The guarded value is a plain counter: a panic cannot leave it half-written.
        self.writes[stripe]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks the start of a write to `id`; returns the ticket `finish_write` checks.
    fn start_write(&self, id: &IdHash) -> u64 {
        let mut counter = self.counter(id);
        *counter += 1;
        *counter
    }

    /// Caches `record` as `id`'s current state if no other write to its stripe started since
    /// `ticket`, and forgets `id` otherwise (or when `record` is `None`).
    fn finish_write(&self, id: &IdHash, ticket: u64, record: Option<&Record>) {
        let counter = self.counter(id);
        match record {
            Some(record) if *counter == ticket => self.insert(id, record),
            _ => {
                self.cache.remove(id);
            }
        }
    }

    fn insert(&self, id: &IdHash, record: &Record) {
        if !self.is_trusted() {
            return;
        }
        match Compact::from(record) {
            Some(compact) => self.cache.insert(*id, compact),
            None => {
                self.cache.remove(id);
            }
        }
    }
}

/// What one slot of the cache holds: a session whose data (as JSON) and client details take up
/// to this many bytes. A larger session takes one slot more for every further `SLOT_BYTES`, so
/// `cache_capacity` bounds the cache's memory (about 180 bytes per ordinary session, its data
/// included), not only its number of sessions.
const SLOT_BYTES: usize = 256;

/// Weighs each cached session in slots (see [`SLOT_BYTES`]).
#[derive(Debug, Clone, Copy)]
struct Slots;

impl Weighter<IdHash, Compact> for Slots {
    fn weight(&self, _: &IdHash, cached: &Compact) -> u64 {
        let user = cached.user.as_deref().map_or(0, |user| {
            user.user_id.len()
                + user.client.user_agent.as_ref().map_or(0, String::len)
                + user.client.address.as_ref().map_or(0, String::len)
        });
        1 + ((cached.data.len() + user) / SLOT_BYTES) as u64
    }
}

/// A cached session, kept small: the data as its JSON text (a few dozen bytes), not as a map
/// (whose tree nodes cost hundreds), and decoded on the way out.
#[derive(Clone)]
struct Compact {
    data: Box<str>,
    version: i64,
    created_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    /// Boxed: one pointer for the many anonymous sessions.
    user: Option<Box<SignedIn>>,
}

impl Compact {
    fn from(record: &Record) -> Option<Self> {
        Some(Self {
            data: serde_json::to_string(&record.data).ok()?.into_boxed_str(),
            version: record.version,
            created_at: record.created_at,
            expires_at: record.expires_at,
            user: record.user.clone().map(Box::new),
        })
    }

    fn to_record(&self) -> Option<Record> {
        Some(Record {
            data: serde_json::from_str(&self.data).ok()?,
            version: self.version,
            created_at: self.created_at,
            expires_at: self.expires_at,
            user: self.user.as_deref().cloned(),
        })
    }
}

#[async_trait::async_trait]
impl<S: SessionStore> SessionStore for CachedStore<S> {
    async fn create(&self, id: &IdHash, record: &Record) -> Result<bool, StoreError> {
        let ticket = self.memory.start_write(id);
        let created = self.inner.create(id, record).await;
        self.memory.finish_write(
            id,
            ticket,
            created.as_ref().is_ok_and(|c| *c).then_some(record),
        );
        created
    }

    async fn load(&self, id: &IdHash, now: OffsetDateTime) -> Result<Option<Record>, StoreError> {
        if self.memory.cached(id, now).is_some() {
            // Changes other instances committed before now may still be on their way: wait for
            // them, then look again.
            let caught_up = match &self.memory.barrier {
                Some(barrier) => barrier.wait().await,
                None => true,
            };
            if caught_up && let Some(record) = self.memory.cached(id, now) {
                return Ok(Some(record));
            }
        }
        self.read_through(id, now).await
    }

    async fn load_unconfirmed(
        &self,
        id: &IdHash,
        now: OffsetDateTime,
    ) -> Result<Option<Loaded>, StoreError> {
        if let Some(record) = self.memory.cached(id, now) {
            // Without a barrier this process is the only writer: the copy is current.
            let confirmed = self.memory.barrier.is_none();
            return Ok(Some(Loaded { record, confirmed }));
        }
        let loaded = self.read_through(id, now).await?;
        Ok(loaded.map(|record| Loaded {
            record,
            confirmed: true,
        }))
    }

    async fn save(
        &self,
        id: &IdHash,
        record: &Record,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let ticket = self.memory.start_write(id);
        let saved = self.inner.save(id, record, now).await;
        self.memory.finish_write(
            id,
            ticket,
            saved.as_ref().is_ok_and(|s| *s).then_some(record),
        );
        saved
    }

    async fn touch(
        &self,
        id: &IdHash,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let ticket = self.memory.start_write(id);
        let touched = self.inner.touch(id, expires_at, now).await;
        let counter = self.memory.counter(id);
        // A moved deadline is all that changed: the cached copy stays, with the new deadline, so
        // the session's next read is still a hit. Anything else (the session ended, another
        // write overtook this one, the database failed) forgets it.
        let refreshed = matches!(touched, Ok(true))
            && *counter == ticket
            && self.memory.is_trusted()
            && self.memory.cache.peek(id).is_some_and(|mut cached| {
                cached.expires_at = cached.expires_at.max(expires_at);
                self.memory.cache.replace(*id, cached, true).is_ok()
            });
        if !refreshed {
            self.memory.cache.remove(id);
        }
        touched
    }

    async fn rekey(
        &self,
        old: &IdHash,
        new: &IdHash,
        record: &Record,
        now: OffsetDateTime,
    ) -> Result<Rekeyed, StoreError> {
        let old_ticket = self.memory.start_write(old);
        let new_ticket = self.memory.start_write(new);
        let rekeyed = self.inner.rekey(old, new, record, now).await;
        self.memory.finish_write(old, old_ticket, None);
        let done = matches!(rekeyed, Ok(Rekeyed::Done));
        self.memory
            .finish_write(new, new_ticket, done.then_some(record));
        rekeyed
    }

    async fn delete(&self, id: &IdHash) -> Result<(), StoreError> {
        let ticket = self.memory.start_write(id);
        let deleted = self.inner.delete(id).await;
        self.memory.finish_write(id, ticket, None);
        deleted
    }

    fn user_index(&self) -> Option<&dyn UserIndex> {
        // The cache forgets the sessions that per-user operations move or end.
        self.inner.user_index().map(|_| self as &dyn UserIndex)
    }

    fn expired_deletion(&self) -> Option<&dyn ExpiredDeletion> {
        // Only sessions past their deadline go, and expired copies are never served.
        self.inner.expired_deletion()
    }
}

/// The inner store's per-user index, with the cache kept in step: the sessions a sign-in moves
/// and those a revoke or a new auth epoch ends are forgotten.
#[async_trait::async_trait]
impl<S: SessionStore> UserIndex for CachedStore<S> {
    async fn sign_in(
        &self,
        old: Option<&IdHash>,
        new: &IdHash,
        record: &Record,
        now: OffsetDateTime,
    ) -> Result<Rekeyed, StoreError> {
        let users = self.inner.user_index().ok_or_else(no_user_index)?;
        let old_ticket = old.map(|old| (old, self.memory.start_write(old)));
        let new_ticket = self.memory.start_write(new);
        let signed_in = users.sign_in(old, new, record, now).await;
        if let Some((old, ticket)) = old_ticket {
            self.memory.finish_write(old, ticket, None);
        }
        let done = matches!(signed_in, Ok(Rekeyed::Done));
        self.memory
            .finish_write(new, new_ticket, done.then_some(record));
        signed_in
    }

    async fn user_sessions(
        &self,
        user_id: &str,
        current: Option<&IdHash>,
        now: OffsetDateTime,
    ) -> Result<Vec<Device>, StoreError> {
        let users = self.inner.user_index().ok_or_else(no_user_index)?;
        users.user_sessions(user_id, current, now).await
    }

    async fn revoke(&self, user_id: &str, which: Revoke<'_>) -> Result<Vec<IdHash>, StoreError> {
        let users = self.inner.user_index().ok_or_else(no_user_index)?;
        let revoked = users.revoke(user_id, which).await?;
        for id in &revoked {
            self.memory.invalidate(id);
        }
        Ok(revoked)
    }

    async fn bump_auth_epoch(
        &self,
        user_id: &str,
        keep: Option<&IdHash>,
    ) -> Result<Vec<IdHash>, StoreError> {
        let users = self.inner.user_index().ok_or_else(no_user_index)?;
        let ended = users.bump_auth_epoch(user_id, keep).await?;
        for id in &ended {
            self.memory.invalidate(id);
        }
        Ok(ended)
    }
}

/// Lets a cache hit wait until every change committed anywhere before it asked has reached the
/// cache, so a logout on another instance is seen at once, not merely within milliseconds.
#[derive(Debug, Clone)]
pub(crate) struct Barrier {
    requests: mpsc::Sender<oneshot::Sender<()>>,
}

impl Barrier {
    /// `true` once every change committed before the call has been applied; `false` if the
    /// listener cannot tell (read the database instead).
    pub async fn wait(&self) -> bool {
        let (done, answer) = oneshot::channel();
        if self.requests.send(done).await.is_err() {
            return false;
        }
        answer.await.is_ok()
    }
}

#[cfg_attr(
    not(feature = "postgres"),
    expect(dead_code, reason = "only Postgres has other writers")
)]
/// A barrier for a cache, and the receiving end for [`spawn`].
pub(crate) fn barrier() -> (Barrier, mpsc::Receiver<oneshot::Sender<()>>) {
    let (requests, waiting) = mpsc::channel(4096);
    (Barrier { requests }, waiting)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::sync::Semaphore;

    use super::*;

    use crate::{SessionData, SessionId};

    /// The in-memory store, counting its loads and holding each back until released if it has
    /// a gate. Only `load` changes; the rest goes to the store as is.
    #[derive(Default)]
    struct MemoryStore {
        store: crate::MemoryStore,
        loads: AtomicUsize,
        gate: Option<Arc<Semaphore>>,
    }

    impl MemoryStore {
        /// Stores `record` as `id`, whatever was there: a change made behind the cache's back.
        async fn put(&self, id: IdHash, record: Record) {
            self.store.delete(&id).await.expect("delete");
            assert!(self.store.create(&id, &record).await.expect("create"));
        }
    }

    #[async_trait::async_trait]
    impl SessionStore for MemoryStore {
        async fn create(&self, id: &IdHash, record: &Record) -> Result<bool, StoreError> {
            self.store.create(id, record).await
        }
        async fn load(
            &self,
            id: &IdHash,
            now: OffsetDateTime,
        ) -> Result<Option<Record>, StoreError> {
            self.loads.fetch_add(1, Ordering::SeqCst);
            let found = self.store.load(id, now).await;
            if let Some(gate) = &self.gate {
                gate.acquire().await.expect("open").forget();
            }
            found
        }
        async fn save(
            &self,
            id: &IdHash,
            record: &Record,
            now: OffsetDateTime,
        ) -> Result<bool, StoreError> {
            self.store.save(id, record, now).await
        }
        async fn touch(
            &self,
            id: &IdHash,
            expires_at: OffsetDateTime,
            now: OffsetDateTime,
        ) -> Result<bool, StoreError> {
            self.store.touch(id, expires_at, now).await
        }
        async fn rekey(
            &self,
            old: &IdHash,
            new: &IdHash,
            record: &Record,
            now: OffsetDateTime,
        ) -> Result<Rekeyed, StoreError> {
            self.store.rekey(old, new, record, now).await
        }
        async fn delete(&self, id: &IdHash) -> Result<(), StoreError> {
            self.store.delete(id).await
        }
        fn user_index(&self) -> Option<&dyn UserIndex> {
            self.store.user_index()
        }
    }

    fn at(ms: i64) -> OffsetDateTime {
        crate::store::from_unix_ms(ms)
    }

    fn record(version: i64, expires_at: i64, name: &str) -> Record {
        let mut data = SessionData::new();
        data.insert("name".into(), name.into());
        Record {
            data,
            version,
            created_at: at(0),
            expires_at: at(expires_at),
            user: None,
        }
    }

    #[tokio::test]
    async fn reads_after_a_write_are_served_from_memory_and_see_the_write() {
        let store = CachedStore::new(MemoryStore::default(), 100);
        let id = SessionId::generate().hash();
        assert!(
            store
                .create(&id, &record(0, 1000, "a"))
                .await
                .expect("create")
        );
        assert!(
            store
                .save(&id, &record(1, 1000, "b"), at(10))
                .await
                .expect("save")
        );

        let loaded = store.load(&id, at(10)).await.expect("load");

        assert_eq!(loaded, Some(record(1, 1000, "b")));
        assert_eq!(
            store.inner.loads.load(Ordering::SeqCst),
            0,
            "no database read"
        );
    }

    #[tokio::test]
    async fn a_deleted_session_is_not_served_from_memory() {
        let store = CachedStore::new(MemoryStore::default(), 100);
        let id = SessionId::generate().hash();
        store
            .create(&id, &record(0, 1000, "a"))
            .await
            .expect("create");

        store.delete(&id).await.expect("delete");

        assert_eq!(store.load(&id, at(10)).await.expect("load"), None);
    }

    #[tokio::test]
    async fn an_expired_cached_session_is_not_served() {
        let store = CachedStore::new(MemoryStore::default(), 100);
        let id = SessionId::generate().hash();
        store
            .create(&id, &record(0, 1000, "a"))
            .await
            .expect("create");

        assert_eq!(store.load(&id, at(1000)).await.expect("load"), None);
    }

    #[tokio::test]
    async fn a_slow_read_overtaken_by_a_write_does_not_cache_the_old_row() {
        let gate = Arc::new(Semaphore::new(0));
        let inner = MemoryStore {
            gate: Some(Arc::clone(&gate)),
            ..MemoryStore::default()
        };
        let store = Arc::new(CachedStore::new(inner, 100));
        let id = SessionId::generate().hash();
        store.inner.put(id, record(0, 1000, "old")).await;

        // A read fetches the old row, then stalls before it can fill the cache ...
        let slow = tokio::spawn({
            let store = Arc::clone(&store);
            async move { store.load(&id, at(10)).await }
        });
        let started = tokio::time::timeout(Duration::from_secs(10), async {
            while store.inner.loads.load(Ordering::SeqCst) == 0 {
                tokio::task::yield_now().await;
            }
        });
        started.await.expect("the read reaches the store");
        // ... a write lands meanwhile ...
        assert!(
            store
                .save(&id, &record(1, 1000, "new"), at(10))
                .await
                .expect("save")
        );
        gate.add_permits(1);
        let stale = tokio::time::timeout(Duration::from_secs(10), slow)
            .await
            .expect("the slow read finishes")
            .expect("joined")
            .expect("load");
        gate.add_permits(1);

        // ... and the next read sees the write, not the slow read's row.
        assert_eq!(stale, Some(record(0, 1000, "old")));
        assert_eq!(
            store.load(&id, at(10)).await.expect("load"),
            Some(record(1, 1000, "new"))
        );
    }

    #[tokio::test]
    async fn a_cache_hit_waits_for_changes_announced_before_it_and_rereads() {
        let (barrier, mut barriers) = barrier();
        let store =
            Arc::new(CachedStore::distrusted(MemoryStore::default(), 10).with_barrier(barrier));
        store.memory.trust_for(Duration::from_secs(60));
        let id = SessionId::generate().hash();
        assert!(
            store
                .create(&id, &record(1, 1000, "old"))
                .await
                .expect("create")
        );
        // Another instance changes the row behind this cache's back ...
        store.inner.put(id, record(2, 1000, "new")).await;
        // ... and the "listener" applies its announcement at the barrier.
        let listener = tokio::spawn({
            let store = Arc::clone(&store);
            async move {
                let done = barriers.recv().await.expect("a barrier request");
                store.memory.invalidate(&id);
                done.send(()).expect("the reader waits");
            }
        });

        // A broken barrier must fail this test, not hang it.
        let loaded = tokio::time::timeout(Duration::from_secs(10), store.load(&id, at(10)))
            .await
            .expect("the load finishes")
            .expect("load");

        tokio::time::timeout(Duration::from_secs(10), listener)
            .await
            .expect("the listener finishes")
            .expect("listener");
        assert_eq!(
            loaded,
            Some(record(2, 1000, "new")),
            "the evicted copy was not served"
        );
    }

    #[tokio::test]
    async fn an_unconfirmed_hit_skips_the_barrier_and_says_so() {
        let (barrier, mut barriers) = barrier();
        let shared = CachedStore::distrusted(MemoryStore::default(), 10).with_barrier(barrier);
        shared.memory.trust_for(Duration::from_secs(60));
        let sole = CachedStore::new(MemoryStore::default(), 10);
        let id = SessionId::generate().hash();
        for store in [&shared, &sole] {
            store
                .create(&id, &record(1, 1000, "a"))
                .await
                .expect("create");
        }

        let from_shared = shared.load_unconfirmed(&id, at(10)).await.expect("load");
        let from_sole = sole.load_unconfirmed(&id, at(10)).await.expect("load");

        let unconfirmed = Loaded {
            record: record(1, 1000, "a"),
            confirmed: false,
        };
        assert_eq!(from_shared, Some(unconfirmed.clone()));
        assert!(barriers.try_recv().is_err(), "nobody waited at the barrier");
        assert_eq!(shared.inner.loads.load(Ordering::SeqCst), 0, "no query");
        assert_eq!(
            from_sole,
            Some(Loaded {
                confirmed: true,
                ..unconfirmed
            }),
            "a sole writer's cache is always current"
        );
    }

    #[tokio::test]
    async fn without_an_answer_from_the_barrier_the_database_is_read() {
        let (barrier, barriers) = barrier();
        drop(barriers);
        let store = CachedStore::distrusted(MemoryStore::default(), 10).with_barrier(barrier);
        store.memory.trust_for(Duration::from_secs(60));
        let id = SessionId::generate().hash();
        store
            .create(&id, &record(1, 1000, "old"))
            .await
            .expect("create");
        store.inner.put(id, record(2, 1000, "new")).await;

        let loaded = store.load(&id, at(10)).await.expect("load");

        assert_eq!(loaded, Some(record(2, 1000, "new")));
    }
    #[tokio::test]
    async fn a_touched_session_stays_cached_with_its_new_deadline() {
        let store = CachedStore::new(MemoryStore::default(), 100);
        let id = SessionId::generate().hash();
        assert!(
            store
                .create(&id, &record(0, 1000, "a"))
                .await
                .expect("create")
        );

        assert!(store.touch(&id, at(5000), at(10)).await.expect("touch"));
        let loaded = store.load(&id, at(2000)).await.expect("load");

        assert_eq!(
            loaded,
            Some(record(0, 5000, "a")),
            "live past the old deadline"
        );
        assert_eq!(store.inner.loads.load(Ordering::SeqCst), 0, "still a hit");
    }

    #[tokio::test]
    async fn a_touch_that_moved_nothing_forgets_the_cached_copy() {
        let store = CachedStore::new(MemoryStore::default(), 100);
        let id = SessionId::generate().hash();
        assert!(
            store
                .create(&id, &record(0, 1000, "a"))
                .await
                .expect("create")
        );
        // Ended behind the cache's back (as the purge or another instance may end it).
        store.inner.store.delete(&id).await.expect("delete");

        assert!(!store.touch(&id, at(5000), at(10)).await.expect("touch"));

        assert_eq!(store.load(&id, at(2000)).await.expect("load"), None);
        assert_eq!(
            store.load(&id, at(10)).await.expect("load"),
            None,
            "not served stale"
        );
        assert_eq!(store.inner.loads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn large_sessions_take_more_room_and_evicted_ones_read_back_from_the_store() {
        let capacity = 64;
        let store = CachedStore::new(MemoryStore::default(), capacity);
        let big = "x".repeat(4 * SLOT_BYTES);
        let ids: Vec<IdHash> = (0..capacity)
            .map(|_| SessionId::generate().hash())
            .collect();
        for id in &ids {
            assert!(
                store
                    .create(id, &record(0, 1000, &big))
                    .await
                    .expect("create")
            );
        }

        // Each weighs five slots, so the cache holds about a fifth of them.
        let cached = ids
            .iter()
            .filter(|id| store.memory.cache.peek(*id).is_some())
            .count();
        assert!(cached <= capacity / 5 + 1, "{cached} of {capacity} cached");
        assert!(store.memory.cache.weight() <= capacity as u64);

        for id in &ids {
            let loaded = store.load(id, at(10)).await.expect("load");
            assert_eq!(loaded, Some(record(0, 1000, &big)));
        }
        assert!(store.inner.loads.load(Ordering::SeqCst) >= capacity - cached);
    }

    #[tokio::test]
    async fn a_write_to_an_evicted_session_is_seen_by_the_next_read() {
        let store = CachedStore::new(MemoryStore::default(), 8);
        let first = SessionId::generate().hash();
        assert!(
            store
                .create(&first, &record(0, 1000, "a"))
                .await
                .expect("create")
        );
        for _ in 0..64 {
            let other = SessionId::generate().hash();
            assert!(
                store
                    .create(&other, &record(0, 1000, "b"))
                    .await
                    .expect("create")
            );
        }
        assert!(
            store
                .save(&first, &record(1, 1000, "c"), at(10))
                .await
                .expect("save")
        );

        assert_eq!(
            store.load(&first, at(10)).await.expect("load"),
            Some(record(1, 1000, "c"))
        );
    }
}
