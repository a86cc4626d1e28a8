//! Batching: one task owns a database connection and serves every queued request in one go —
//! one transaction (one commit, one fsync) per batch of writes, one query per batch of reads.
//! Callers hear back only after their batch finished.

use std::sync::Arc;

use tokio::sync::{Mutex, mpsc, oneshot};

use super::{Record, Rekeyed};
use crate::{IdHash, SessionError};

/// Most requests one batch carries. Bounds how long the first of them waits.
const MAX_BATCH: usize = 256;
/// Requests that may wait for the task before callers are slowed down (backpressure).
const QUEUE_DEPTH: usize = 4096;

/// A write to the `sessions` table, as the stores' writer tasks take them.
#[derive(Debug)]
pub(super) enum Write {
    Create {
        id: IdHash,
        record: Record,
    },
    Save {
        id: IdHash,
        record: Record,
        now: i64,
    },
    Touch {
        id: IdHash,
        expires_at: i64,
        now: i64,
    },
    #[cfg_attr(
        not(feature = "sqlite"),
        expect(dead_code, reason = "only the SQLite writer takes these")
    )]
    Rekey {
        old: IdHash,
        new: IdHash,
        record: Record,
        now: i64,
    },
    Delete {
        id: IdHash,
    },
    #[cfg_attr(
        not(feature = "sqlite"),
        expect(dead_code, reason = "only the SQLite writer takes these")
    )]
    DeleteExpired {
        now: i64,
        limit: u32,
    },
}

impl Write {
    /// The session this write is about, for ordering a batch (none for the purge).
    pub(super) fn id(&self) -> Option<&IdHash> {
        match self {
            Self::Create { id, .. }
            | Self::Save { id, .. }
            | Self::Touch { id, .. }
            | Self::Delete { id } => Some(id),
            Self::Rekey { old, .. } => Some(old),
            Self::DeleteExpired { .. } => None,
        }
    }
}

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Written {
    /// Whether it took effect (create: the ID was free; save: the version matched).
    Applied(bool),
    #[cfg_attr(
        not(feature = "sqlite"),
        expect(dead_code, reason = "only the SQLite writer takes these")
    )]
    Rekeyed(Rekeyed),
    #[cfg_attr(
        not(feature = "sqlite"),
        expect(dead_code, reason = "only the SQLite writer takes these")
    )]
    Count(u64),
}

impl Written {
    pub(super) fn applied(self) -> bool {
        matches!(self, Self::Applied(true))
    }

    #[cfg_attr(
        not(feature = "sqlite"),
        expect(dead_code, reason = "only the SQLite writer takes these")
    )]
    /// The outcome of a `Write::Rekey` (every other answer is a bug in the writer).
    pub(super) fn rekeyed(self) -> Result<Rekeyed, SessionError> {
        match self {
            Self::Rekeyed(outcome) => Ok(outcome),
            _ => Err(SessionError::WriterGone),
        }
    }

    #[cfg_attr(
        not(feature = "sqlite"),
        expect(dead_code, reason = "only the SQLite writer takes these")
    )]
    /// The outcome of a `Write::DeleteExpired` (every other answer is a bug in the writer).
    pub(super) fn count(self) -> Result<u64, SessionError> {
        match self {
            Self::Count(count) => Ok(count),
            _ => Err(SessionError::WriterGone),
        }
    }
}

/// A batch of writes regrouped so each kind of write can go out as one multi-row statement.
///
/// Within a round no session appears twice, so a statement's `returning` list says exactly
/// which of its writes took effect; a session's second write in the batch goes to the second
/// round, and so on, so each session's writes keep their order.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Round {
    pub creates: Vec<usize>,
    pub saves: Vec<usize>,
    pub touches: Vec<usize>,
    pub deletes: Vec<usize>,
    /// Writes that go out one statement each (rekey, purge).
    pub singles: Vec<usize>,
}

impl Round {
    /// How many statements the round takes.
    pub(super) fn statements(&self) -> usize {
        [&self.creates, &self.saves, &self.touches, &self.deletes]
            .iter()
            .filter(|group| !group.is_empty())
            .count()
            + self.singles.len()
    }
}

/// Splits `batch` into rounds (indices into `batch`).
pub(super) fn plan(batch: &[Job<Write, Written>]) -> Vec<Round> {
    let mut rounds: Vec<Round> = Vec::new();
    let mut seen: std::collections::HashMap<IdHash, usize> = std::collections::HashMap::new();
    for (index, job) in batch.iter().enumerate() {
        let round = match job.request.id() {
            Some(id) => {
                let count = seen.entry(*id).or_insert(0);
                *count += 1;
                *count - 1
            }
            None => 0,
        };
        if rounds.len() <= round {
            rounds.resize_with(round + 1, Round::default);
        }
        let round = &mut rounds[round];
        match job.request {
            Write::Create { .. } => round.creates.push(index),
            Write::Save { .. } => round.saves.push(index),
            Write::Touch { .. } => round.touches.push(index),
            Write::Delete { .. } => round.deletes.push(index),
            Write::Rekey { .. } | Write::DeleteExpired { .. } => round.singles.push(index),
        }
    }
    rounds
}

/// Records, for each of `indices`, whether its session is among those a statement reported
/// (through `returning`) as written.
pub(super) fn mark(
    batch: &[Job<Write, Written>],
    indices: &[usize],
    written: &std::collections::HashSet<IdHash>,
    outcomes: &mut [Written],
) {
    for &index in indices {
        if let Some(id) = batch[index].request.id() {
            outcomes[index] = Written::Applied(written.contains(id));
        }
    }
}

/// The IDs in the first column of `rows` (what a `returning id_hash` statement reports).
pub(super) fn returned_ids<R>(
    rows: Vec<R>,
) -> Result<std::collections::HashSet<IdHash>, SessionError>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    for<'r> Vec<u8>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let mut ids = std::collections::HashSet::with_capacity(rows.len());
    for row in rows {
        let hash: Vec<u8> = row.try_get(0)?;
        if let Ok(hash) = <[u8; 32]>::try_from(hash) {
            ids.insert(IdHash(hash));
        }
    }
    Ok(ids)
}

/// A request waiting for the batch task, and where its answer goes.
pub(super) struct Job<Q, A> {
    pub request: Q,
    reply: oneshot::Sender<Result<A, SessionError>>,
}

/// What a batch task does with each batch.
#[async_trait::async_trait]
pub(super) trait Batch<Q, A>: Send + 'static {
    /// Serves every job of `batch`, answers in the same order; an error answers them all.
    async fn run(&mut self, batch: &[Job<Q, A>]) -> Result<Vec<A>, SessionError>;
}

/// The handle callers use to queue requests for a batch task.
#[derive(Debug)]
pub(super) struct Batcher<Q, A> {
    jobs: mpsc::Sender<Job<Q, A>>,
}

impl<Q, A> Clone for Batcher<Q, A> {
    fn clone(&self) -> Self {
        Self {
            jobs: self.jobs.clone(),
        }
    }
}

impl<Q: Send + 'static, A: Clone + Send + 'static> Batcher<Q, A> {
    /// Starts the task; it ends when the last handle is dropped.
    pub(super) fn spawn(batch: impl Batch<Q, A>) -> Self {
        Self::spawn_many(vec![batch])
    }

    /// Starts one task per element of `batches`, all taking from the same queue: while one
    /// batch is in flight, the next can start on another connection.
    pub(super) fn spawn_many(batches: Vec<impl Batch<Q, A>>) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE_DEPTH);
        let queue = Arc::new(Mutex::new(queue));
        for batch in batches {
            tokio::spawn(serve(batch, Arc::clone(&queue)));
        }
        Self { jobs }
    }

    #[cfg_attr(
        not(feature = "sqlite"),
        expect(dead_code, reason = "only the SQLite writer takes these")
    )]
    /// A handle that does not keep the task alive, for helpers that should stop with it.
    pub(super) fn downgrade(&self) -> mpsc::WeakSender<Job<Q, A>> {
        self.jobs.downgrade()
    }

    /// Queues `request` and waits for its batch.
    pub(super) async fn submit(&self, request: Q) -> Result<A, SessionError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { request, reply })
            .await
            .map_err(|_| SessionError::WriterGone)?;
        answer.await.map_err(|_| SessionError::WriterGone)?
    }
}

async fn serve<Q, A: Clone>(
    mut batch: impl Batch<Q, A>,
    queue: Arc<Mutex<mpsc::Receiver<Job<Q, A>>>>,
) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    // The queue is locked only while taking a batch, not while running it.
    while queue.lock().await.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        match batch.run(&jobs).await {
            Ok(answers) => {
                for (job, answer) in jobs.drain(..).zip(answers) {
                    let _ = job.reply.send(Ok(answer));
                }
            }
            Err(error) => {
                for job in jobs.drain(..) {
                    let _ = job.reply.send(Err(error.clone()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SessionData, SessionId};

    fn job(request: Write) -> Job<Write, Written> {
        let (reply, _) = oneshot::channel();
        Job { request, reply }
    }

    fn record() -> Record {
        Record {
            data: SessionData::new(),
            version: 1,
            created_at: 0,
            expires_at: 10,
        }
    }

    #[test]
    fn writes_to_different_sessions_share_one_round_grouped_by_kind() {
        let [a, b, c] = [(); 3].map(|()| SessionId::generate().hash());
        let batch = [
            job(Write::Save {
                id: a,
                record: record(),
                now: 0,
            }),
            job(Write::Create {
                id: b,
                record: record(),
            }),
            job(Write::Save {
                id: c,
                record: record(),
                now: 0,
            }),
            job(Write::DeleteExpired { now: 0, limit: 10 }),
        ];

        let rounds = plan(&batch);

        assert_eq!(rounds.len(), 1);
        assert_eq!(rounds[0].saves, vec![0, 2]);
        assert_eq!(rounds[0].creates, vec![1]);
        assert_eq!(rounds[0].singles, vec![3]);
        assert_eq!(rounds[0].statements(), 3);
    }

    #[test]
    fn a_sessions_later_writes_go_to_later_rounds_in_order() {
        let [a, b] = [(); 2].map(|()| SessionId::generate().hash());
        let batch = [
            job(Write::Save {
                id: a,
                record: record(),
                now: 0,
            }),
            job(Write::Touch {
                id: a,
                expires_at: 5,
                now: 0,
            }),
            job(Write::Save {
                id: b,
                record: record(),
                now: 0,
            }),
            job(Write::Delete { id: a }),
        ];

        let rounds = plan(&batch);

        assert_eq!(rounds.len(), 3);
        assert_eq!(rounds[0].saves, vec![0, 2]);
        assert_eq!(rounds[1].touches, vec![1]);
        assert_eq!(rounds[2].deletes, vec![3]);
    }
}
