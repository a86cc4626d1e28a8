//! Batching: one task owns a database connection and serves every queued request in one go —
//! one transaction (one commit, one fsync) per batch of writes, one query per batch of reads.
//! Callers hear back only after their batch finished.

use tokio::sync::{mpsc, oneshot};

use super::{Record, Rekeyed};
use crate::session::{IdHash, SessionError};

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
    Rekey {
        old: IdHash,
        new: IdHash,
        now: i64,
    },
    Delete {
        id: IdHash,
    },
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
    Rekeyed(Rekeyed),
    Count(u64),
}

impl Written {
    pub(super) fn applied(self) -> bool {
        matches!(self, Self::Applied(true))
    }

    /// The outcome of a `Write::Rekey` (every other answer is a bug in the writer).
    pub(super) fn rekeyed(self) -> Result<Rekeyed, SessionError> {
        match self {
            Self::Rekeyed(outcome) => Ok(outcome),
            _ => Err(SessionError::WriterGone),
        }
    }

    /// The outcome of a `Write::DeleteExpired` (every other answer is a bug in the writer).
    pub(super) fn count(self) -> Result<u64, SessionError> {
        match self {
            Self::Count(count) => Ok(count),
            _ => Err(SessionError::WriterGone),
        }
    }
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
        let (jobs, queue) = mpsc::channel(QUEUE_DEPTH);
        tokio::spawn(serve(batch, queue));
        Self { jobs }
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

async fn serve<Q, A: Clone>(mut batch: impl Batch<Q, A>, mut queue: mpsc::Receiver<Job<Q, A>>) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut jobs, MAX_BATCH).await > 0 {
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
