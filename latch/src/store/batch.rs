//! Batching as a layer around a store: [`Batched`] queues writes (and, where the backend asks
//! for it, loads) for a task that hands every request waiting to the store in one call — one
//! transaction (one commit, one fsync) per batch of writes, one query per batch of loads.
//! Callers hear back only after their batch finished.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

use super::{ExpiredDeletion, Record, Rekeyed, SessionStore, StoreError, UserIndex, WriterStopped};
use crate::IdHash;

/// Most requests one batch carries. Bounds how long the first of them waits.
const MAX_BATCH: usize = 256;
/// Requests that may wait for the task before callers are slowed down (backpressure).
const QUEUE_DEPTH: usize = 4096;

/// One write to the `sessions` table, as [`WriteBatches::write_batch`] takes them. Each has the
/// meaning of the [`SessionStore`] method of the same name. Deliberately exhaustive: a store
/// that applies batches must handle every kind of write, and the compiler says so.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// [`SessionStore::create`].
    Create {
        /// The new session's ID hash.
        id: IdHash,
        /// What to store.
        record: Record,
    },
    /// [`SessionStore::save`].
    Save {
        /// The session's ID hash.
        id: IdHash,
        /// The new state; written only over `record.version - 1`.
        record: Record,
        /// The time the session must still be live at.
        now: OffsetDateTime,
    },
    /// [`SessionStore::touch`].
    Touch {
        /// The session's ID hash.
        id: IdHash,
        /// The new deadline; only ever moves forward.
        expires_at: OffsetDateTime,
        /// The time the session must still be live at.
        now: OffsetDateTime,
    },
    /// [`SessionStore::delete`].
    Delete {
        /// The session's ID hash.
        id: IdHash,
    },
}

impl Write {
    /// The session this write is about.
    pub fn id(&self) -> &IdHash {
        match self {
            Self::Create { id, .. }
            | Self::Save { id, .. }
            | Self::Touch { id, .. }
            | Self::Delete { id } => id,
        }
    }
}

/// A store that can apply many writes in one go, which is what [`Batched`] needs of it.
///
/// Rekeys are not batched: [`Batched`] passes them to the store as they come (a rekey onto an ID
/// in use fails its statement, which must not abort anyone else's write). Sign-ins, per-user
/// operations and purges do not go through it at all: it hands out the store's own
/// [`UserIndex`] and [`ExpiredDeletion`].
#[async_trait::async_trait]
pub trait WriteBatches: SessionStore {
    /// Whether [`load_batch`](Self::load_batch) should serve loads too: worth it where every
    /// query is a network round trip, not where reads run beside each other on local files.
    const LOADS_IN_BATCHES: bool = false;

    /// Applies `writes` in order (a session may appear more than once), all or none, and says
    /// of each whether it took effect: create, the ID was free; save, the version matched;
    /// touch, the deadline moved; delete, the session existed. On an error nothing was written.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the database fails; no write of the batch is then stored.
    async fn write_batch(&self, writes: &[Write]) -> Result<Vec<bool>, StoreError>;

    /// The live session for each `(id, now)` of `loads`, in the same order.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the database fails.
    async fn load_batch(
        &self,
        loads: &[(IdHash, OffsetDateTime)],
    ) -> Result<Vec<Option<Record>>, StoreError> {
        let mut found = Vec::with_capacity(loads.len());
        for (id, now) in loads {
            found.push(self.load(id, *now).await?);
        }
        Ok(found)
    }

    /// This store behind the batching layer.
    fn batched(self) -> Batched<Self>
    where
        Self: Sized,
    {
        Batched::new(self)
    }
}

/// Applies one write through [`WriteBatches::write_batch`]: how the bundled stores serve a
/// single write, so that the batched and unbatched paths run the same SQL.
pub(super) async fn write_one<S: WriteBatches + ?Sized>(
    store: &S,
    write: Write,
) -> Result<bool, StoreError> {
    let outcomes = store.write_batch(std::slice::from_ref(&write)).await?;
    Ok(outcomes.first().copied().unwrap_or(false))
}

/// A store whose writes (and, if it says so, loads) are queued for a task that serves all those
/// waiting in one call to the store: under load, one commit for many requests.
///
/// A caller's write is answered only once the batch holding it is committed, so nothing a request
/// was told was saved can be lost. Start it inside a Tokio runtime (Rocket's is one): it spawns
/// its tasks there, and they end when it is dropped.
pub struct Batched<S> {
    inner: Arc<S>,
    writes: Batcher<Write, bool>,
    loads: Option<Batcher<(IdHash, OffsetDateTime), Option<Record>>>,
}

impl<S: WriteBatches> Batched<S> {
    /// Puts the batching layer around `inner`.
    pub fn new(inner: S) -> Self {
        let inner = Arc::new(inner);
        let writes = Batcher::spawn(Writes(Arc::clone(&inner)));
        let loads = S::LOADS_IN_BATCHES.then(|| Batcher::spawn(Loads(Arc::clone(&inner))));
        Self {
            inner,
            writes,
            loads,
        }
    }

    /// The store inside.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    #[cfg(test)]
    fn queued_writes(&self) -> usize {
        self.writes.queued()
    }
}

impl<S> std::fmt::Debug for Batched<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batched")
            .field("loads_in_batches", &self.loads.is_some())
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl<S: WriteBatches> SessionStore for Batched<S> {
    async fn create(&self, id: &IdHash, record: &Record) -> Result<bool, StoreError> {
        let write = Write::Create {
            id: *id,
            record: record.clone(),
        };
        self.writes.submit(write).await
    }

    async fn load(&self, id: &IdHash, now: OffsetDateTime) -> Result<Option<Record>, StoreError> {
        match &self.loads {
            Some(loads) => loads.submit((*id, now)).await,
            None => self.inner.load(id, now).await,
        }
    }

    async fn save(
        &self,
        id: &IdHash,
        record: &Record,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let write = Write::Save {
            id: *id,
            record: record.clone(),
            now,
        };
        self.writes.submit(write).await
    }

    async fn touch(
        &self,
        id: &IdHash,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let write = Write::Touch {
            id: *id,
            expires_at,
            now,
        };
        self.writes.submit(write).await
    }

    async fn rekey(
        &self,
        old: &IdHash,
        new: &IdHash,
        record: &Record,
        now: OffsetDateTime,
    ) -> Result<Rekeyed, StoreError> {
        self.inner.rekey(old, new, record, now).await
    }

    async fn delete(&self, id: &IdHash) -> Result<(), StoreError> {
        self.writes
            .submit(Write::Delete { id: *id })
            .await
            .map(drop)
    }

    fn user_index(&self) -> Option<&dyn UserIndex> {
        self.inner.user_index()
    }

    fn expired_deletion(&self) -> Option<&dyn ExpiredDeletion> {
        self.inner.expired_deletion()
    }
}

/// The write task's side of [`Batched`].
struct Writes<S>(Arc<S>);

#[async_trait::async_trait]
impl<S: WriteBatches> Batch<Write, bool> for Writes<S> {
    async fn run(&mut self, batch: &[Write]) -> Result<Vec<bool>, StoreError> {
        self.0.write_batch(batch).await
    }
}

/// The load task's side of [`Batched`].
struct Loads<S>(Arc<S>);

#[async_trait::async_trait]
impl<S: WriteBatches> Batch<(IdHash, OffsetDateTime), Option<Record>> for Loads<S> {
    async fn run(
        &mut self,
        batch: &[(IdHash, OffsetDateTime)],
    ) -> Result<Vec<Option<Record>>, StoreError> {
        self.0.load_batch(batch).await
    }
}

/// A batch of writes regrouped so each kind of write can go out as one multi-row statement.
///
/// Within a round no session appears twice, so a statement's `returning` list says exactly
/// which of its writes took effect; a session's second write in the batch goes to the second
/// round, and so on, so each session's writes keep their order.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Round {
    /// Anonymous sessions: the short insert, without the user columns.
    pub creates: Vec<usize>,
    /// Sessions created signed in (rare: sign-ins have a path of their own).
    pub user_creates: Vec<usize>,
    pub saves: Vec<usize>,
    pub touches: Vec<usize>,
    pub deletes: Vec<usize>,
}

impl Round {
    /// How many statements the round takes.
    pub(super) fn statements(&self) -> usize {
        [
            &self.creates,
            &self.user_creates,
            &self.saves,
            &self.touches,
            &self.deletes,
        ]
        .iter()
        .filter(|group| !group.is_empty())
        .count()
    }
}

/// Splits `batch` into rounds (indices into `batch`).
pub(super) fn plan(batch: &[Write]) -> Vec<Round> {
    let mut rounds: Vec<Round> = Vec::new();
    let mut seen: HashMap<IdHash, usize> = HashMap::new();
    for (index, write) in batch.iter().enumerate() {
        let count = seen.entry(*write.id()).or_insert(0);
        let round = *count;
        *count += 1;
        if rounds.len() <= round {
            rounds.resize_with(round + 1, Round::default);
        }
        let round = &mut rounds[round];
        match write {
            Write::Create { record, .. } if record.user.is_some() => {
                round.user_creates.push(index);
            }
            Write::Create { .. } => round.creates.push(index),
            Write::Save { .. } => round.saves.push(index),
            Write::Touch { .. } => round.touches.push(index),
            Write::Delete { .. } => round.deletes.push(index),
        }
    }
    rounds
}

/// Records, for each of `indices`, whether its session is among those a statement reported
/// (through `returning`) as written.
pub(super) fn mark(
    batch: &[Write],
    indices: &[usize],
    written: &HashSet<IdHash>,
    outcomes: &mut [bool],
) {
    for &index in indices {
        outcomes[index] = written.contains(batch[index].id());
    }
}

/// The IDs in the first column of `rows` (what a `returning id_hash` statement reports).
pub(super) fn returned_ids<R>(rows: Vec<R>) -> Result<HashSet<IdHash>, StoreError>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    for<'r> Vec<u8>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let mut ids = HashSet::with_capacity(rows.len());
    for row in rows {
        let hash: Vec<u8> = row.try_get(0)?;
        if let Ok(hash) = <[u8; 32]>::try_from(hash) {
            ids.insert(IdHash(hash));
        }
    }
    Ok(ids)
}

/// A request waiting for the batch task, and where its answer goes.
struct Job<Q, A> {
    request: Q,
    reply: oneshot::Sender<Result<A, StoreError>>,
}

/// What a batch task does with each batch.
#[async_trait::async_trait]
trait Batch<Q, A>: Send + 'static {
    /// Serves every request of `batch`, answers in the same order; an error answers them all.
    async fn run(&mut self, batch: &[Q]) -> Result<Vec<A>, StoreError>;
}

/// The handle callers use to queue requests for a batch task.
struct Batcher<Q, A> {
    jobs: mpsc::Sender<Job<Q, A>>,
}

impl<Q: Send + 'static, A: Clone + Send + 'static> Batcher<Q, A> {
    /// Starts the task; it ends when the handle is dropped.
    fn spawn(batch: impl Batch<Q, A>) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE_DEPTH);
        tokio::spawn(serve(batch, queue));
        Self { jobs }
    }

    /// Queues `request` and waits for its batch.
    async fn submit(&self, request: Q) -> Result<A, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { request, reply })
            .await
            .map_err(|_| StoreError::unavailable(WriterStopped))?;
        answer
            .await
            .map_err(|_| StoreError::unavailable(WriterStopped))?
    }

    #[cfg(test)]
    fn queued(&self) -> usize {
        self.jobs.max_capacity() - self.jobs.capacity()
    }
}

async fn serve<Q, A: Clone>(mut batch: impl Batch<Q, A>, mut queue: mpsc::Receiver<Job<Q, A>>) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    let mut requests = Vec::with_capacity(MAX_BATCH);
    let mut replies = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        for Job { request, reply } in jobs.drain(..) {
            requests.push(request);
            replies.push(reply);
        }
        let answers = batch.run(&requests).await;
        requests.clear();
        match answers {
            Ok(answers) => {
                for (reply, answer) in replies.drain(..).zip(answers) {
                    let _ = reply.send(Ok(answer));
                }
            }
            Err(error) => {
                for reply in replies.drain(..) {
                    let _ = reply.send(Err(error.clone()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use tokio::sync::Semaphore;

    use super::*;

    fn at(ms: i64) -> OffsetDateTime {
        crate::store::from_unix_ms(ms)
    }
    use crate::{SessionData, SessionId};

    fn record() -> Record {
        Record {
            data: SessionData::new(),
            version: 1,
            created_at: at(0),
            expires_at: at(10),
            user: None,
        }
    }

    fn save(id: IdHash) -> Write {
        Write::Save {
            id,
            record: record(),
            now: at(0),
        }
    }

    #[test]
    fn writes_to_different_sessions_share_one_round_grouped_by_kind() {
        let [a, b, c] = [(); 3].map(|()| SessionId::generate().hash());
        let batch = [
            save(a),
            Write::Create {
                id: b,
                record: record(),
            },
            save(c),
        ];

        let rounds = plan(&batch);

        assert_eq!(rounds.len(), 1);
        assert_eq!(rounds[0].saves, vec![0, 2]);
        assert_eq!(rounds[0].creates, vec![1]);
        assert_eq!(rounds[0].statements(), 2);
    }

    #[test]
    fn a_sessions_later_writes_go_to_later_rounds_in_order() {
        let [a, b] = [(); 2].map(|()| SessionId::generate().hash());
        let batch = [
            save(a),
            Write::Touch {
                id: a,
                expires_at: at(5),
                now: at(0),
            },
            save(b),
            Write::Delete { id: a },
        ];

        let rounds = plan(&batch);

        assert_eq!(rounds.len(), 3);
        assert_eq!(rounds[0].saves, vec![0, 2]);
        assert_eq!(rounds[1].touches, vec![1]);
        assert_eq!(rounds[2].deletes, vec![3]);
    }

    /// A store that records the batches it is given, holds each until a permit is added, and
    /// answers "applied" for saves of even versions (or fails every batch, if told to).
    struct Recorder {
        batches: Mutex<Vec<usize>>,
        permits: Semaphore,
        fail: bool,
    }

    impl Recorder {
        fn new(fail: bool) -> Self {
            Self {
                batches: Mutex::default(),
                permits: Semaphore::new(0),
                fail,
            }
        }
    }

    #[async_trait::async_trait]
    impl SessionStore for Recorder {
        async fn create(&self, id: &IdHash, record: &Record) -> Result<bool, StoreError> {
            let write = Write::Create {
                id: *id,
                record: record.clone(),
            };
            write_one(self, write).await
        }

        async fn load(&self, _: &IdHash, _: OffsetDateTime) -> Result<Option<Record>, StoreError> {
            Ok(None)
        }

        async fn save(
            &self,
            id: &IdHash,
            record: &Record,
            now: OffsetDateTime,
        ) -> Result<bool, StoreError> {
            let write = Write::Save {
                id: *id,
                record: record.clone(),
                now,
            };
            write_one(self, write).await
        }

        async fn touch(
            &self,
            id: &IdHash,
            expires_at: OffsetDateTime,
            now: OffsetDateTime,
        ) -> Result<bool, StoreError> {
            let write = Write::Touch {
                id: *id,
                expires_at,
                now,
            };
            write_one(self, write).await
        }

        async fn rekey(
            &self,
            _: &IdHash,
            _: &IdHash,
            _: &Record,
            _: OffsetDateTime,
        ) -> Result<Rekeyed, StoreError> {
            Ok(Rekeyed::Gone)
        }

        async fn delete(&self, id: &IdHash) -> Result<(), StoreError> {
            write_one(self, Write::Delete { id: *id }).await.map(drop)
        }
    }

    #[async_trait::async_trait]
    impl WriteBatches for Recorder {
        async fn write_batch(&self, writes: &[Write]) -> Result<Vec<bool>, StoreError> {
            self.batches
                .lock()
                .expect("not poisoned")
                .push(writes.len());
            self.permits.acquire().await.expect("open").forget();
            if self.fail {
                return Err(StoreError::unavailable(WriterStopped));
            }
            Ok(writes
                .iter()
                .map(|write| matches!(write, Write::Save { record, .. } if record.version % 2 == 0))
                .collect())
        }
    }

    /// Starts one save per version in `versions` while the store holds a first batch, then
    /// lets the batches through; returns each save's answer and the batch sizes seen.
    async fn saves_behind_a_held_batch(
        store: Recorder,
        versions: std::ops::Range<i64>,
    ) -> (Vec<Result<bool, StoreError>>, Vec<usize>) {
        let batched = Arc::new(store.batched());
        let first = {
            let batched = Arc::clone(&batched);
            tokio::spawn(async move {
                let id = SessionId::generate().hash();
                batched.save(&id, &record(), at(0)).await
            })
        };
        while batched
            .inner()
            .batches
            .lock()
            .expect("not poisoned")
            .is_empty()
        {
            tokio::task::yield_now().await;
        }
        let count = versions.clone().count();
        let saves: Vec<_> = versions
            .map(|version| {
                let batched = Arc::clone(&batched);
                tokio::spawn(async move {
                    let id = SessionId::generate().hash();
                    let record = Record {
                        version,
                        ..record()
                    };
                    batched.save(&id, &record, at(0)).await
                })
            })
            .collect();
        while batched.queued_writes() < count {
            tokio::task::yield_now().await;
        }
        batched.inner().permits.add_permits(2);
        let _ = first.await.expect("the first save ran");
        let mut answers = Vec::new();
        for save in saves {
            answers.push(save.await.expect("a save ran"));
        }
        let batches = batched
            .inner()
            .batches
            .lock()
            .expect("not poisoned")
            .clone();
        (answers, batches)
    }

    #[tokio::test]
    async fn writes_that_wait_go_to_the_store_in_one_batch_and_each_hears_its_own_answer() {
        let (answers, batches) = saves_behind_a_held_batch(Recorder::new(false), 0..20).await;

        assert_eq!(batches, vec![1, 20]);
        let expected: Vec<bool> = (0..20).map(|version| version % 2 == 0).collect();
        let answers: Vec<bool> = answers.into_iter().map(|a| a.expect("applied")).collect();
        assert_eq!(answers, expected);
    }

    #[tokio::test]
    async fn a_failed_batch_answers_every_write_in_it_with_the_error() {
        let (answers, batches) = saves_behind_a_held_batch(Recorder::new(true), 0..5).await;

        assert_eq!(batches, vec![1, 5]);
        assert!(answers.iter().all(Result::is_err), "{answers:?}");
    }
}
