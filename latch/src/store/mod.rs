//! Where sessions live: a small trait (the store contract), one implementation per database, and
//! layers around them: batching, a cache, and on Postgres the change notifications that keep the
//! cache in step.

mod batch;
mod cached;
#[cfg(feature = "postgres")]
mod listen;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use batch::{Batched, Write, WriteBatches};
pub use cached::CachedStore;
#[cfg(feature = "postgres")]
pub use listen::CHANNEL;
#[cfg(feature = "postgres")]
pub use postgres::PostgresStore;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;

use crate::{IdHash, SessionError};

/// A session's data: a JSON object, one entry per key.
pub type SessionData = serde_json::Map<String, serde_json::Value>;

/// One stored session. Times are Unix milliseconds, compared the same way by load and purge.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The session's values, one entry per [`Key`](crate::Key).
    pub data: SessionData,
    /// Bumped by every data write; a write names the version it read, so two writers that read
    /// the same version cannot both succeed (optimistic concurrency).
    pub version: i64,
    /// When the session was created; the absolute timeout counts from here.
    pub created_at: i64,
    /// When the session ends unless it is used: `min(last activity + idle, created + absolute)`.
    pub expires_at: i64,
}

/// A session read by [`SessionStore::load_unconfirmed`].
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// What was read.
    pub record: Record,
    /// `false` for a cached copy that other instances may have changed or ended since.
    pub confirmed: bool,
}

/// What a change of a session's ID did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rekeyed {
    /// The session now lives under the new ID, with the new record.
    Done,
    /// No live session had the old ID at the version the new record follows: it ended, or
    /// another write got there first (a `load` tells which).
    Gone,
    /// The new ID is already in use (astronomically unlikely; the caller draws another).
    IdTaken,
}

/// Storage for sessions, keyed by the hash of their ID.
///
/// Every method that reads or extends a session takes `now` and ignores rows whose `expires_at`
/// has passed, so an expired row behaves exactly like a missing one even before the purge
/// removes it, and nothing can bring it back to life.
#[async_trait::async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Inserts a new session; `Ok(false)` if the ID is taken.
    async fn create(&self, id: &IdHash, record: &Record) -> Result<bool, SessionError>;

    /// The live session with this ID, if any.
    async fn load(&self, id: &IdHash, now: i64) -> Result<Option<Record>, SessionError>;

    /// Like [`load`](Self::load), but a cache may answer before it knows it has heard every
    /// change other instances committed. Such a copy is good enough to write from (the write's
    /// version check catches a stale one), but must be read again with `load` before any of it
    /// is shown.
    async fn load_unconfirmed(
        &self,
        id: &IdHash,
        now: i64,
    ) -> Result<Option<Loaded>, SessionError> {
        Ok(self.load(id, now).await?.map(|record| Loaded {
            record,
            confirmed: true,
        }))
    }

    /// Replaces the data and deadline if the stored version is still `record.version - 1` and the
    /// session is live; `Ok(false)` if another write got there first or the session ended.
    async fn save(&self, id: &IdHash, record: &Record, now: i64) -> Result<bool, SessionError>;

    /// Moves a live session's deadline forward to `expires_at` (never back). Data and version are
    /// untouched, so a touch never conflicts with a data write.
    async fn touch(&self, id: &IdHash, expires_at: i64, now: i64) -> Result<(), SessionError>;

    /// Moves a live session to a new ID and replaces its data and deadline with `record`'s, in
    /// one statement, if its stored version is still `record.version - 1`: the old ID stops
    /// working at once, and nobody ever sees the new data under it.
    async fn rekey(
        &self,
        old: &IdHash,
        new: &IdHash,
        record: &Record,
        now: i64,
    ) -> Result<Rekeyed, SessionError>;

    /// Deletes the session, if it exists.
    async fn delete(&self, id: &IdHash) -> Result<(), SessionError>;

    /// Apart from the per-session operations above, for the purge: deletes at most `limit`
    /// sessions that expired at or before `now`, and returns how many.
    async fn delete_expired(&self, now: i64, limit: u32) -> Result<u64, SessionError>;
}

/// A summary of the stored sessions, for operators ([`Database::stats`](crate::Database::stats)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreStats {
    /// Sessions not yet expired.
    pub live: i64,
    /// Expired but not yet purged.
    pub expired: i64,
    /// `created_at` of the oldest live session.
    pub oldest_live_created_at: Option<i64>,
}

/// Moves a live session to a new ID and replaces its data, version and deadline, if its version
/// is still the one before `$3`. The same text on both backends (`$n` is a numbered parameter in
/// SQLite too): `$1` new ID, `$2` data, `$3` version, `$4` deadline, `$5` old ID, `$6` now.
const REKEY: &str = "
    update sessions
    set id_hash = $1, data = $2, version = $3, expires_at = $4
    where id_hash = $5 and version = $3 - 1 and expires_at > $6";

/// What a [`REKEY`] statement did, from the rows it changed.
fn rekey_outcome(changed: Result<u64, sqlx::Error>) -> Result<Rekeyed, SessionError> {
    match changed {
        Ok(1) => Ok(Rekeyed::Done),
        Ok(_) => Ok(Rekeyed::Gone),
        Err(e) if is_unique_violation(&e) => Ok(Rekeyed::IdTaken),
        Err(e) => Err(e.into()),
    }
}

/// A `sessions` row as both backends read it.
#[derive(sqlx::FromRow)]
struct StoredRow {
    data: String,
    version: i64,
    created_at: i64,
    expires_at: i64,
}

impl TryFrom<StoredRow> for Record {
    type Error = SessionError;

    fn try_from(row: StoredRow) -> Result<Self, SessionError> {
        Ok(Self {
            data: decode_data(&row.data)?,
            version: row.version,
            created_at: row.created_at,
            expires_at: row.expires_at,
        })
    }
}

fn encode_data(data: &SessionData) -> Result<String, SessionError> {
    serde_json::to_string(data).map_err(|e| SessionError::data("*", e))
}

fn decode_data(json: &str) -> Result<SessionData, SessionError> {
    serde_json::from_str(json).map_err(|e| SessionError::data("*", e))
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}
