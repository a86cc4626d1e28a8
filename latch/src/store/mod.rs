//! Where sessions live: a small trait (the store contract), one implementation per database, and
//! layers around them: batching, a cache, and on Postgres the change notifications that keep the
//! cache in step.

mod batch;
mod cached;
mod error;
#[cfg(feature = "postgres")]
mod listen;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use batch::{Batched, Write, WriteBatches};
pub use cached::CachedStore;
pub(crate) use error::WriterStopped;
pub use error::{Cause, StoreError};
pub use memory::MemoryStore;
#[cfg(feature = "postgres")]
pub use postgres::PostgresStore;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;

mod users;

use time::OffsetDateTime;

use crate::user::{Device, Handle, Revoke, SignedIn};
use crate::{ClientInfo, IdHash};

/// A session's data: a JSON object, one entry per key.
pub type SessionData = serde_json::Map<String, serde_json::Value>;

/// One stored session. Its times are kept to the millisecond (the SQL stores keep Unix
/// milliseconds), and compared the same way by load and purge.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The session's values, one entry per [`Key`](crate::Key).
    pub data: SessionData,
    /// Bumped by every data write; a write names the version it read, so two writers that read
    /// the same version cannot both succeed (optimistic concurrency).
    pub version: i64,
    /// When the session was created; the absolute timeout counts from here.
    pub created_at: OffsetDateTime,
    /// When the session ends unless it is used: `min(last activity + idle, created + absolute)`.
    pub expires_at: OffsetDateTime,
    /// Who the session is signed in as, if anyone (see [`UserIndex::sign_in`]).
    pub user: Option<SignedIn>,
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
#[non_exhaustive]
pub enum Rekeyed {
    /// The session now lives under the new ID, with the new record.
    Done,
    /// No live session had the old ID at the version the new record follows: it ended, or
    /// another write got there first (a `load` tells which).
    Gone,
    /// The new ID is already in use (astronomically unlikely; the caller draws another).
    IdTaken,
}

/// Storage for sessions, keyed by the hash of their ID: the contract a store of any kind
/// implements. The purge ([`ExpiredDeletion`]) and the per-user index ([`UserIndex`]) are
/// traits of their own, which a store offers through [`expired_deletion`](Self::expired_deletion)
/// and [`user_index`](Self::user_index); a store without them still keeps sessions (expired
/// ones are never served), but cannot sign sessions in.
///
/// Every method that reads or extends a session takes `now` and ignores sessions whose
/// `expires_at` has passed, so an expired session behaves exactly like a missing one even
/// before it is deleted, and nothing can bring it back to life.
/// [`testing::contract`](crate::testing::contract) checks a store against all of this.
#[async_trait::async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Inserts a new session; `Ok(false)` if the ID is taken.
    async fn create(&self, id: &IdHash, record: &Record) -> Result<bool, StoreError>;

    /// The live session with this ID, if any.
    async fn load(&self, id: &IdHash, now: OffsetDateTime) -> Result<Option<Record>, StoreError>;

    /// Like [`load`](Self::load), but a cache may answer before it knows it has heard every
    /// change other instances committed. Such a copy is good enough to write from (the write's
    /// version check catches a stale one), but must be read again with `load` before any of it
    /// is shown.
    async fn load_unconfirmed(
        &self,
        id: &IdHash,
        now: OffsetDateTime,
    ) -> Result<Option<Loaded>, StoreError> {
        Ok(self.load(id, now).await?.map(|record| Loaded {
            record,
            confirmed: true,
        }))
    }

    /// Replaces the data and deadline if the stored version is still `record.version - 1` and the
    /// session is live; `Ok(false)` if another write got there first or the session ended.
    async fn save(
        &self,
        id: &IdHash,
        record: &Record,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// Moves a live session's deadline forward to `expires_at` (never back), and says whether it
    /// moved (`false`: the session ended, or its deadline was already as late). Data and version
    /// are untouched, so a touch never conflicts with a data write.
    async fn touch(
        &self,
        id: &IdHash,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// Moves a live session to a new ID and replaces its data, deadline and user with
    /// `record`'s, at once, if its stored version is still `record.version - 1`: the old ID
    /// stops working at once, and nobody ever sees the new data under it. It may keep the
    /// session's user or clear it (a sign-out), never change it: only
    /// [`UserIndex::sign_in`] signs a session in (`Gone` otherwise).
    async fn rekey(
        &self,
        old: &IdHash,
        new: &IdHash,
        record: &Record,
        now: OffsetDateTime,
    ) -> Result<Rekeyed, StoreError>;

    /// Deletes the session, if it exists.
    async fn delete(&self, id: &IdHash) -> Result<(), StoreError>;

    /// The store's per-user index, if it keeps one: what signing in, listing a user's devices
    /// and revoking them need. `None` by default.
    fn user_index(&self) -> Option<&dyn UserIndex> {
        None
    }

    /// The store's deletion of expired sessions, if it has one: what the purge task runs.
    /// `None` by default (a store whose entries expire by themselves needs none).
    fn expired_deletion(&self) -> Option<&dyn ExpiredDeletion> {
        None
    }
}

/// A shared store is a store: an app can keep an `Arc` of the store it hands latch.
#[async_trait::async_trait]
impl<S: SessionStore + ?Sized> SessionStore for std::sync::Arc<S> {
    async fn create(&self, id: &IdHash, record: &Record) -> Result<bool, StoreError> {
        (**self).create(id, record).await
    }

    async fn load(&self, id: &IdHash, now: OffsetDateTime) -> Result<Option<Record>, StoreError> {
        (**self).load(id, now).await
    }

    async fn load_unconfirmed(
        &self,
        id: &IdHash,
        now: OffsetDateTime,
    ) -> Result<Option<Loaded>, StoreError> {
        (**self).load_unconfirmed(id, now).await
    }

    async fn save(
        &self,
        id: &IdHash,
        record: &Record,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        (**self).save(id, record, now).await
    }

    async fn touch(
        &self,
        id: &IdHash,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        (**self).touch(id, expires_at, now).await
    }

    async fn rekey(
        &self,
        old: &IdHash,
        new: &IdHash,
        record: &Record,
        now: OffsetDateTime,
    ) -> Result<Rekeyed, StoreError> {
        (**self).rekey(old, new, record, now).await
    }

    async fn delete(&self, id: &IdHash) -> Result<(), StoreError> {
        (**self).delete(id).await
    }

    fn user_index(&self) -> Option<&dyn UserIndex> {
        (**self).user_index()
    }

    fn expired_deletion(&self) -> Option<&dyn ExpiredDeletion> {
        (**self).expired_deletion()
    }
}

/// Deletes expired sessions in bounded batches: what the purge task runs (see
/// [`purge`](crate::purge)).
#[async_trait::async_trait]
pub trait ExpiredDeletion: Send + Sync {
    /// Deletes at most `limit` sessions that expired at or before `now`, and returns how many.
    async fn delete_expired(&self, now: OffsetDateTime, limit: u32) -> Result<u64, StoreError>;
}

/// Sessions indexed by the user they are signed in as: signing in, listing a user's sessions,
/// and ending them (one, all but one, all, or all signed in before a password change).
#[async_trait::async_trait]
pub trait UserIndex: Send + Sync {
    /// Signs a session in as `record.user`, at once: takes the user's current auth epoch
    /// (so that a concurrent [`bump_auth_epoch`](Self::bump_auth_epoch) either sees this
    /// session or is seen by it) and records it with the session, which moves from `old` to
    /// `new` as [`rekey`](SessionStore::rekey) moves it or, without `old`, is created under
    /// `new`. `Gone` and `IdTaken` as for `rekey`.
    async fn sign_in(
        &self,
        old: Option<&IdHash>,
        new: &IdHash,
        record: &Record,
        now: OffsetDateTime,
    ) -> Result<Rekeyed, StoreError>;

    /// The user's live sessions, in the order they signed in; `current` marks the asking one.
    async fn user_sessions(
        &self,
        user_id: &str,
        current: Option<&IdHash>,
        now: OffsetDateTime,
    ) -> Result<Vec<Device>, StoreError>;

    /// Ends the user's sessions that `which` names, and returns their ID hashes (for caches to
    /// forget them). Only ever the user's own: another user's handle matches nothing.
    async fn revoke(&self, user_id: &str, which: Revoke<'_>) -> Result<Vec<IdHash>, StoreError>;

    /// Moves the user's auth epoch forward and ends every session of theirs that signed in
    /// before, all but `keep` (which moves to the new epoch): what a password change does.
    /// Returns the ended sessions' ID hashes.
    async fn bump_auth_epoch(
        &self,
        user_id: &str,
        keep: Option<&IdHash>,
    ) -> Result<Vec<IdHash>, StoreError>;
}

/// What a store without a per-user index answers to a per-user operation.
pub(crate) fn no_user_index() -> StoreError {
    StoreError::failed("this session store keeps no per-user index")
}

/// A summary of the stored sessions, for operators ([`Database::stats`](crate::Database::stats)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreStats {
    /// Sessions not yet expired.
    pub live: i64,
    /// Expired but not yet purged.
    pub expired: i64,
    /// `created_at` of the oldest live session.
    pub oldest_live_created_at: Option<OffsetDateTime>,
}

/// Moves a live session to a new ID and replaces its data, version, deadline and user, if its
/// version is still the one before `$3`. The same text on both backends (`$n` is a numbered
/// parameter in SQLite too): `$1` new ID, `$2` data, `$3` version, `$4` deadline, `$5` old ID,
/// `$6` now, `$7`..`$11` the user's id, handle, sign-in time, agent and address, `$12` the auth
/// epoch of a sign-in (null for a plain rekey, which may keep the user or clear it, not change
/// it).
const REKEY: &str = "
    update sessions
    set id_hash = $1, data = $2, version = $3, expires_at = $4, last_seen = $6,
        user_id = $7, handle = $8, signed_in_at = $9, user_agent = $10, address = $11,
        auth_epoch = case when $7 is null then null else coalesce($12, auth_epoch) end
    where id_hash = $5 and version = $3 - 1 and expires_at > $6
        and ($12 is not null or $7 is null or user_id = $7)";

/// Stores a new, signed-in session: the parameters of [`REKEY`], without the old ID (`$5`).
const CREATE_SIGNED_IN: &str = "
    insert into sessions (id_hash, data, version, expires_at, created_at, last_seen,
        user_id, handle, signed_in_at, user_agent, address, auth_epoch)
    values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
    on conflict (id_hash) do nothing";

/// The user's current auth epoch, creating the user's row (at 0) if need be, and locking it
/// until the transaction ends. `$1` the user's id.
const LOCK_USER: &str = "
    insert into latch_users (user_id, auth_epoch) values ($1, 0)
    on conflict (user_id) do update set auth_epoch = latch_users.auth_epoch
    returning auth_epoch";

/// What a [`REKEY`] statement did, from the rows it changed.
fn rekey_outcome(changed: Result<u64, sqlx::Error>) -> Result<Rekeyed, StoreError> {
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
    user_id: Option<String>,
    handle: Option<Vec<u8>>,
    signed_in_at: Option<i64>,
    user_agent: Option<String>,
    address: Option<String>,
}

impl TryFrom<StoredRow> for Record {
    type Error = StoreError;

    fn try_from(row: StoredRow) -> Result<Self, StoreError> {
        let user = match (
            row.user_id,
            row.handle.as_deref().and_then(Handle::from_slice),
        ) {
            (Some(user_id), Some(handle)) => Some(SignedIn {
                user_id,
                handle,
                signed_in_at: from_unix_ms(row.signed_in_at.unwrap_or(row.created_at)),
                client: ClientInfo {
                    user_agent: row.user_agent,
                    address: row.address,
                },
            }),
            _ => None,
        };
        Ok(Self {
            data: decode_data(&row.data)?,
            version: row.version,
            created_at: from_unix_ms(row.created_at),
            expires_at: from_unix_ms(row.expires_at),
            user,
        })
    }
}

/// A row of a batched load, with the ID hash it is filed under.
#[derive(sqlx::FromRow)]
struct FoundRow {
    id_hash: Vec<u8>,
    #[sqlx(flatten)]
    row: StoredRow,
}

/// The answer to each load of `batch`, in order, from the rows one query found for all of them
/// (read at the earliest `now` of the batch).
fn found_in_order(
    batch: &[(IdHash, OffsetDateTime)],
    rows: Vec<FoundRow>,
) -> Result<Vec<Option<Record>>, StoreError> {
    let mut found = std::collections::HashMap::with_capacity(rows.len());
    for FoundRow { id_hash, row } in rows {
        let Ok(hash) = <[u8; 32]>::try_from(id_hash) else {
            continue;
        };
        found.insert(IdHash(hash), Record::try_from(row)?);
    }
    // Each load asked at its own `now`: a row that expired in between is not returned to it.
    Ok(batch
        .iter()
        .map(|(id, now)| found.get(id).filter(|r| r.expires_at > *now).cloned())
        .collect())
}

/// A signed-in session's user columns as bound to SQL: all null for an anonymous one.
struct UserColumns<'a> {
    user_id: Option<&'a str>,
    handle: Option<&'a [u8]>,
    signed_in_at: Option<i64>,
    user_agent: Option<&'a str>,
    address: Option<&'a str>,
}

impl<'a> UserColumns<'a> {
    fn of(record: &'a Record) -> Self {
        let user = record.user.as_ref();
        Self {
            user_id: user.map(|u| u.user_id.as_str()),
            handle: user.map(|u| u.handle.as_bytes()),
            signed_in_at: user.map(|u| unix_ms(u.signed_in_at)),
            user_agent: user.and_then(|u| u.client.user_agent.as_deref()),
            address: user.and_then(|u| u.client.address.as_deref()),
        }
    }
}

/// `time` as Unix milliseconds, as the SQL stores keep times (saturating far outside any
/// session's lifetime).
pub(crate) fn unix_ms(time: OffsetDateTime) -> i64 {
    i64::try_from(time.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// A time the SQL stores kept as Unix milliseconds. Past the years `time` can represent
/// (±9999), it saturates at the last instant it can.
pub(crate) fn from_unix_ms(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap_or_else(|_| {
        if ms < 0 {
            time::PrimitiveDateTime::MIN.assume_utc()
        } else {
            time::PrimitiveDateTime::MAX.assume_utc()
        }
    })
}

fn encode_data(data: &SessionData) -> Result<String, StoreError> {
    serde_json::to_string(data).map_err(StoreError::failed)
}

fn decode_data(json: &str) -> Result<SessionData, StoreError> {
    serde_json::from_str(json).map_err(StoreError::corrupt)
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}
