//! The SQLite session store: the embedded default.
//!
//! SQLite lets one connection write at a time, and connections that wait for the lock sleep in
//! growing steps, which wrecks latency under load. So every write goes through one dedicated
//! connection, taken in turn, and behind the batching layer ([`Batched`]) the writes waiting are
//! committed together in one transaction: one fsync for a whole batch (group commit).
//!
//! Reads run beside the writer (WAL). Each sqlx SQLite connection lives on a thread of its own,
//! so a query costs two thread switches on top of its work, several times the work of reading
//! one session; behind the batching layer the loads waiting go to a reader connection of the
//! store's own as one query, which pays those switches once for the whole batch.

use std::collections::HashSet;
use std::sync::{Arc, Weak};
use std::time::Duration;

use sqlx::{AssertSqlSafe, Connection, SqliteConnection, SqlitePool};
use time::OffsetDateTime;
use tokio::sync::Mutex;

use super::batch::{Round, Write, WriteBatches, mark, plan, returned_ids, write_one};
use super::users::{Target, sqlite as users};
use super::{
    Batched, CachedStore, FoundRow, Record, Rekeyed, SessionStore, StoredRow, UserColumns,
    encode_data, found_in_order,
};
use super::{ExpiredDeletion, StoreError, UserIndex, unix_ms};
use crate::user::{Device, Revoke};
use crate::{IdHash, SetupError, Table, schema};

/// Sessions in a SQLite database (see `migrations/sqlite`).
///
/// On its own it writes one session at a time; [`batched`](WriteBatches::batched) puts the
/// batching layer around it, which is how [`Database::session_store`](crate::Database) builds it.
#[derive(Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
    table: Table,
    writer: Arc<Mutex<Writer>>,
    /// Where batched loads run (only the load task uses it, one batch at a time).
    reader: Mutex<SqliteConnection>,
}

impl SqliteStore {
    /// Applies latch's schema (see [`schema`](crate::schema)) and opens the store on `pool`,
    /// taking one of its connections for writing. That connection is switched to WAL mode (so
    /// reads run beside the writer, and this stays so for the whole file, the app's own tables
    /// included) with `synchronous = FULL` (so an answered write survives a crash of the
    /// machine), whatever the pool was opened with.
    ///
    /// # Errors
    ///
    /// [`SetupError`] when the schema cannot be applied or the writer's connection cannot be
    /// set up.
    pub async fn open(pool: SqlitePool) -> Result<Self, SetupError> {
        Self::open_table(pool, Table::default()).await
    }

    /// [`open`](Self::open), with the sessions in `table` rather than `sessions`.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open), and [`SetupError::TableTaken`] when a table of that name
    /// exists and is not latch's.
    pub async fn open_table(pool: SqlitePool, table: Table) -> Result<Self, SetupError> {
        schema::apply_sqlite(&pool, &table).await?;
        let mut connection = pool.acquire().await.map_err(StoreError::from)?.detach();
        // Checkpoints (copying the WAL back into the database file, with an fsync) would stall
        // the writer in the middle of a commit; a background task runs them instead.
        for pragma in [
            "pragma journal_mode = wal",
            "pragma synchronous = full",
            "pragma wal_autocheckpoint = 0",
            // Where a restarted WAL is cut back to (see `checkpoint_in_background`).
            "pragma journal_size_limit = 268435456",
        ] {
            sqlx::query(pragma)
                .execute(&mut connection)
                .await
                .map_err(StoreError::from)?;
        }
        let writer = Arc::new(Mutex::new(Writer {
            connection,
            relaxed: false,
        }));
        let reader = Mutex::new(pool.acquire().await.map_err(StoreError::from)?.detach());
        tokio::spawn(checkpoint_in_background(
            pool.clone(),
            Arc::downgrade(&writer),
        ));
        Ok(Self {
            pool,
            table,
            writer,
            reader,
        })
    }
}

impl SqliteStore {
    /// This store behind the batching layer: what [`WriteBatches::batched`] does, callable
    /// without importing the trait.
    pub fn batched(self) -> Batched<Self> {
        Batched::new(self)
    }

    /// This store's table; its statements are prepared and kept (SQLite has no poolers).
    fn target(&self) -> Target<'_> {
        Target {
            table: &self.table,
            persistent: true,
        }
    }
}

impl Batched<SqliteStore> {
    /// This store behind a cache of up to `capacity` sessions. This process must be the
    /// database's only writer of sessions.
    pub fn cached(self, capacity: usize) -> CachedStore<Self> {
        CachedStore::new(self, capacity)
    }
}

#[async_trait::async_trait]
impl SessionStore for SqliteStore {
    async fn create(&self, id: &IdHash, record: &Record) -> Result<bool, StoreError> {
        let write = Write::Create {
            id: *id,
            record: record.clone(),
        };
        write_one(self, write).await
    }

    async fn load(&self, id: &IdHash, now: OffsetDateTime) -> Result<Option<Record>, StoreError> {
        sqlx::query_as::<_, StoredRow>(self.table.sql(
            "select data, version, created_at, expires_at,
                user_id, handle, signed_in_at, user_agent, address
             from sessions
             where id_hash = ? and expires_at > ?",
        ))
        .bind(id.as_bytes())
        .bind(unix_ms(now))
        .fetch_optional(&self.pool)
        .await?
        .map(Record::try_from)
        .transpose()
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
        old: &IdHash,
        new: &IdHash,
        record: &Record,
        now: OffsetDateTime,
    ) -> Result<Rekeyed, StoreError> {
        let mut writer = self.writer.lock().await;
        users::rekey(
            self.target(),
            writer.durable().await?,
            old,
            new,
            record,
            now,
            None,
        )
        .await
    }

    async fn delete(&self, id: &IdHash) -> Result<(), StoreError> {
        write_one(self, Write::Delete { id: *id }).await.map(drop)
    }

    fn user_index(&self) -> Option<&dyn UserIndex> {
        Some(self)
    }

    fn expired_deletion(&self) -> Option<&dyn ExpiredDeletion> {
        Some(self)
    }
}

#[async_trait::async_trait]
impl ExpiredDeletion for SqliteStore {
    async fn delete_expired(&self, now: OffsetDateTime, limit: u32) -> Result<u64, StoreError> {
        // The subquery walks the expires_at index, so a batch costs O(limit), not a table scan.
        let mut writer = self.writer.lock().await;
        let result = sqlx::query(self.table.sql(
            "delete from sessions
             where id_hash in (select id_hash from sessions where expires_at <= ? limit ?)",
        ))
        .bind(unix_ms(now))
        .bind(i64::from(limit))
        .execute(writer.durable().await?)
        .await?;
        Ok(result.rows_affected())
    }
}

#[async_trait::async_trait]
impl UserIndex for SqliteStore {
    async fn sign_in(
        &self,
        old: Option<&IdHash>,
        new: &IdHash,
        record: &Record,
        now: OffsetDateTime,
    ) -> Result<Rekeyed, StoreError> {
        let mut writer = self.writer.lock().await;
        users::sign_in(
            self.target(),
            writer.durable().await?,
            old,
            new,
            record,
            now,
        )
        .await
    }

    async fn user_sessions(
        &self,
        user_id: &str,
        current: Option<&IdHash>,
        now: OffsetDateTime,
    ) -> Result<Vec<Device>, StoreError> {
        let mut reader = self.pool.acquire().await?;
        users::user_sessions(self.target(), &mut reader, user_id, current, now).await
    }

    async fn revoke(&self, user_id: &str, which: Revoke<'_>) -> Result<Vec<IdHash>, StoreError> {
        let mut writer = self.writer.lock().await;
        users::revoke(self.target(), writer.durable().await?, user_id, which).await
    }

    async fn bump_auth_epoch(
        &self,
        user_id: &str,
        keep: Option<&IdHash>,
    ) -> Result<Vec<IdHash>, StoreError> {
        let mut writer = self.writer.lock().await;
        users::bump_auth_epoch(self.target(), writer.durable().await?, user_id, keep).await
    }
}

#[async_trait::async_trait]
impl WriteBatches for SqliteStore {
    const LOADS_IN_BATCHES: bool = true;

    async fn load_batch(
        &self,
        loads: &[(IdHash, OffsetDateTime)],
    ) -> Result<Vec<Option<Record>>, StoreError> {
        let mut reader = self.reader.lock().await;
        load_many(&mut reader, &self.table, loads).await
    }

    /// Applies the batch as a few multi-row statements (see `plan`), in one transaction when
    /// it takes more than one. Anything failing but a duplicate ID rolls the whole batch back
    /// and every caller gets the error: no one is told "saved" about a write not on disk.
    ///
    /// A batch of touches alone is committed without waiting for the disk (see `Writer`).
    async fn write_batch(&self, batch: &[Write]) -> Result<Vec<bool>, StoreError> {
        let rounds = plan(batch);
        let mut outcomes = vec![false; batch.len()];
        let mut writer = self.writer.lock().await;
        let only_touches = batch
            .iter()
            .all(|write| matches!(write, Write::Touch { .. }));
        let writer = if only_touches {
            writer.relaxed().await?
        } else {
            writer.durable().await?
        };
        if let [round] = rounds.as_slice()
            && round.statements() == 1
        {
            // One statement is atomic by itself: no BEGIN / COMMIT around it.
            run_round(writer, &self.table, batch, round, &mut outcomes).await?;
            return Ok(outcomes);
        }
        // IMMEDIATE takes the write lock up front (waiting up to the busy timeout for another
        // process) rather than failing half-way through the batch.
        let mut transaction = writer.begin_with("begin immediate").await?;
        for round in &rounds {
            run_round(&mut transaction, &self.table, batch, round, &mut outcomes).await?;
        }
        transaction.commit().await?;
        Ok(outcomes)
    }
}

/// The store's writing connection, and whether it is relaxed: committing without an fsync
/// (`synchronous = NORMAL`), which only batches of touches do. A touch tells nobody anything was
/// saved, so losing one to a crash costs at most a session that ends sooner than it would
/// have; a read waiting for the disk to extend a deadline costs every read that touches. In WAL
/// mode a relaxed commit is still atomic, and the next durable commit's fsync covers it too.
/// Everything else takes the connection through [`durable`](Self::durable) first.
#[derive(Debug)]
struct Writer {
    connection: SqliteConnection,
    relaxed: bool,
}

impl Writer {
    /// The connection, committing with an fsync (`synchronous = FULL`).
    async fn durable(&mut self) -> Result<&mut SqliteConnection, StoreError> {
        if self.relaxed {
            sqlx::query("pragma synchronous = full")
                .execute(&mut self.connection)
                .await?;
            self.relaxed = false;
        }
        Ok(&mut self.connection)
    }

    /// The connection, committing without waiting for the disk: for touches only.
    async fn relaxed(&mut self) -> Result<&mut SqliteConnection, StoreError> {
        if !self.relaxed {
            sqlx::query("pragma synchronous = normal")
                .execute(&mut self.connection)
                .await?;
            self.relaxed = true;
        }
        Ok(&mut self.connection)
    }
}

/// The live sessions of `batch` in one query. The `in` list has a power-of-two length (the
/// last ID repeated to fill it), so a handful of statements, each prepared once on the reader's
/// connection, serve every batch size.
async fn load_many(
    connection: &mut SqliteConnection,
    table: &Table,
    batch: &[(IdHash, OffsetDateTime)],
) -> Result<Vec<Option<Record>>, StoreError> {
    let Some((last, _)) = batch.last() else {
        return Ok(Vec::new());
    };
    let slots = batch.len().next_power_of_two();
    let sql = format!(
        "select id_hash, data, version, created_at, expires_at,
            user_id, handle, signed_in_at, user_agent, address
         from sessions
         where id_hash in ({}) and expires_at > ?",
        rows_of("?", slots)
    );
    let mut query = sqlx::query_as::<_, FoundRow>(AssertSqlSafe(table.rename(sql)));
    for (id, _) in batch {
        query = query.bind(id.as_bytes());
    }
    for _ in batch.len()..slots {
        query = query.bind(last.as_bytes());
    }
    let earliest = batch
        .iter()
        .map(|(_, now)| unix_ms(*now))
        .min()
        .unwrap_or(0);
    let rows = query.bind(earliest).fetch_all(connection).await?;
    found_in_order(batch, rows)
}

/// How often the WAL is copied back into the database file (in tests, often enough to see).
const CHECKPOINT_INTERVAL: Duration = if cfg!(test) {
    Duration::from_millis(100)
} else {
    Duration::from_secs(1)
};

/// A WAL longer than this many frames (4 KiB pages: 256 MiB) is started over from the
/// beginning. Each restart holds the writer back for tens of milliseconds; at 64 MiB, a stream
/// of new sessions (W3) met one every second and its p99 went from 10 to 15 ms.
const WAL_RESTART_FRAMES: i64 = if cfg!(test) { 64 } else { 65_536 };

/// Runs a passive checkpoint every `CHECKPOINT_INTERVAL`, beside the writer rather than inside
/// its commits, until the store is dropped. A failed checkpoint is retried on the next tick.
///
/// A passive checkpoint copies pages back but never starts the WAL over: only a commit that
/// finds every frame copied does, and under a steady stream of writes a new commit always lands
/// before the checkpoint is through. The WAL then grows without end (to 750 MiB for a 14 MiB
/// database while 100,000 sessions were created). So once it is longer than
/// `WAL_RESTART_FRAMES`, the writer is held back for one restarting checkpoint, which has
/// little left to copy after the passive one, and the file is cut back to that size (256 MiB).
async fn checkpoint_in_background(pool: SqlitePool, writer: Weak<Mutex<Writer>>) {
    let mut ticker = tokio::time::interval(CHECKPOINT_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(writer) = writer.upgrade() else {
            return;
        };
        let frames = sqlx::query_as::<_, (i64, i64, i64)>("pragma wal_checkpoint(passive)")
            .fetch_one(&pool)
            .await;
        let result = match frames {
            Ok((_, frames, _)) if frames > WAL_RESTART_FRAMES => {
                let mut writer = writer.lock().await;
                sqlx::query("pragma wal_checkpoint(restart)")
                    .execute(&mut writer.connection)
                    .await
                    .map(drop)
            }
            other => other.map(drop),
        };
        if let Err(error) = result {
            log::warn!("SQLite checkpoint failed: {error}");
        }
    }
}

async fn run_round(
    connection: &mut SqliteConnection,
    table: &Table,
    batch: &[Write],
    round: &Round,
    outcomes: &mut [bool],
) -> Result<(), StoreError> {
    for (creates, with_user) in [(&round.creates, false), (&round.user_creates, true)] {
        if !creates.is_empty() {
            let created = create_many(&mut *connection, table, batch, creates, with_user).await?;
            mark(batch, creates, &created, outcomes);
        }
    }
    if !round.saves.is_empty() {
        let saved = save_many(&mut *connection, table, batch, &round.saves).await?;
        mark(batch, &round.saves, &saved, outcomes);
    }
    if !round.touches.is_empty() {
        let touched = touch_many(&mut *connection, table, batch, &round.touches).await?;
        mark(batch, &round.touches, &touched, outcomes);
    }
    if !round.deletes.is_empty() {
        let deleted = delete_many(&mut *connection, table, batch, &round.deletes).await?;
        mark(batch, &round.deletes, &deleted, outcomes);
    }
    Ok(())
}

/// Largest batch whose statements stay prepared on the writer's connection. The SQL text varies
/// with the batch size, so each size is a statement of its own; small batches are the common
/// case (one or a few writes waiting), and preparing a statement costs more than running it.
/// Larger, rarer batches are prepared each time rather than filling the cache.
const PREPARED_UP_TO: usize = 8;

/// `count` copies of `row` (a parenthesised list of placeholders), comma-separated.
fn rows_of(row: &str, count: usize) -> String {
    vec![row; count].join(", ")
}

/// Inserts the sessions of `indices`; `with_user` adds the user columns (anonymous sessions
/// leave them null, and the shorter statement is cheaper to prepare).
async fn create_many(
    connection: &mut SqliteConnection,
    table: &Table,
    batch: &[Write],
    indices: &[usize],
    with_user: bool,
) -> Result<HashSet<IdHash>, StoreError> {
    let (user_columns, row) = if with_user {
        (
            ", last_seen, user_id, handle, signed_in_at, user_agent, address",
            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
    } else {
        ("", "(?, ?, ?, ?, ?)")
    };
    // `do nothing` on a taken ID: it is reported by its absence from `returning`.
    let sql = format!(
        "insert into sessions (id_hash, data, version, created_at, expires_at{user_columns}) \
         values {} on conflict (id_hash) do nothing returning id_hash",
        rows_of(row, indices.len())
    );
    let mut query =
        sqlx::query(AssertSqlSafe(table.rename(sql))).persistent(indices.len() <= PREPARED_UP_TO);
    for &index in indices {
        if let Write::Create { id, record } = &batch[index] {
            query = query
                .bind(id.as_bytes())
                .bind(encode_data(&record.data)?)
                .bind(record.version)
                .bind(unix_ms(record.created_at))
                .bind(unix_ms(record.expires_at));
            if with_user {
                let user = UserColumns::of(record);
                query = query
                    .bind(unix_ms(record.created_at))
                    .bind(user.user_id)
                    .bind(user.handle)
                    .bind(user.signed_in_at)
                    .bind(user.user_agent)
                    .bind(user.address);
            }
        }
    }
    returned_ids(query.fetch_all(connection).await?)
}

async fn save_many(
    connection: &mut SqliteConnection,
    table: &Table,
    batch: &[Write],
    indices: &[usize],
) -> Result<HashSet<IdHash>, StoreError> {
    // v: (id_hash, data, version, expires_at, now). A row is written only if it still has the
    // version the writer read (version - 1) and has not expired.
    let sql = format!(
        "update sessions \
         set data = v.column2, version = v.column3, expires_at = v.column4, last_seen = v.column5 \
         from (values {}) as v \
         where sessions.id_hash = v.column1 and sessions.version = v.column3 - 1 \
         and sessions.expires_at > v.column5 \
         returning sessions.id_hash",
        rows_of("(?, ?, ?, ?, ?)", indices.len())
    );
    let mut query =
        sqlx::query(AssertSqlSafe(table.rename(sql))).persistent(indices.len() <= PREPARED_UP_TO);
    for &index in indices {
        if let Write::Save { id, record, now } = &batch[index] {
            query = query
                .bind(id.as_bytes())
                .bind(encode_data(&record.data)?)
                .bind(record.version)
                .bind(unix_ms(record.expires_at))
                .bind(unix_ms(*now));
        }
    }
    returned_ids(query.fetch_all(connection).await?)
}

async fn touch_many(
    connection: &mut SqliteConnection,
    table: &Table,
    batch: &[Write],
    indices: &[usize],
) -> Result<HashSet<IdHash>, StoreError> {
    // v: (id_hash, expires_at, now). Live sessions only, and deadlines only move forward.
    let sql = format!(
        "update sessions set expires_at = v.column2, last_seen = v.column3 \
         from (values {}) as v \
         where sessions.id_hash = v.column1 and sessions.expires_at > v.column3 \
         and sessions.expires_at < v.column2 \
         returning sessions.id_hash",
        rows_of("(?, ?, ?)", indices.len())
    );
    let mut query =
        sqlx::query(AssertSqlSafe(table.rename(sql))).persistent(indices.len() <= PREPARED_UP_TO);
    for &index in indices {
        if let Write::Touch {
            id,
            expires_at,
            now,
        } = &batch[index]
        {
            query = query
                .bind(id.as_bytes())
                .bind(unix_ms(*expires_at))
                .bind(unix_ms(*now));
        }
    }
    returned_ids(query.fetch_all(connection).await?)
}

async fn delete_many(
    connection: &mut SqliteConnection,
    table: &Table,
    batch: &[Write],
    indices: &[usize],
) -> Result<HashSet<IdHash>, StoreError> {
    let sql = format!(
        "delete from sessions where id_hash in ({}) returning id_hash",
        rows_of("?", indices.len())
    );
    let mut query =
        sqlx::query(AssertSqlSafe(table.rename(sql))).persistent(indices.len() <= PREPARED_UP_TO);
    for &index in indices {
        if let Write::Delete { id } = &batch[index] {
            query = query.bind(id.as_bytes());
        }
    }
    returned_ids(query.fetch_all(connection).await?)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::time::Duration;

    use super::*;

    fn at(ms: i64) -> OffsetDateTime {
        crate::store::from_unix_ms(ms)
    }
    use crate::{Database, DatabaseConfig, SessionData, SessionId};

    /// Without the restarting checkpoint the WAL holds every frame since the server started:
    /// a steady stream of commits always lands before a passive checkpoint is through.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_starts_over_under_a_steady_stream_of_writes_and_reads() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let path = dir.path().join("app.db");
        let config = DatabaseConfig {
            url: format!("sqlite://{}", path.display()),
            ..DatabaseConfig::default()
        };
        let Database::Sqlite(pool) = Database::connect(&config).await.expect("connect") else {
            panic!("not SQLite");
        };
        let store = Arc::new(SqliteStore::open(pool).await.expect("open"));
        let stop = Arc::new(AtomicBool::new(false));
        let commits = Arc::new(AtomicU64::new(0));
        let record = Record {
            data: SessionData::new(),
            version: 0,
            created_at: at(0),
            expires_at: time::PrimitiveDateTime::MAX.assume_utc(),
            user: None,
        };
        let writer = tokio::spawn({
            let (store, stop, commits) =
                (Arc::clone(&store), Arc::clone(&stop), Arc::clone(&commits));
            async move {
                while !stop.load(Ordering::Relaxed) {
                    let id = SessionId::generate().hash();
                    assert!(store.create(&id, &record).await.expect("create"));
                    commits.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (store, stop) = (Arc::clone(&store), Arc::clone(&stop));
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let id = SessionId::generate().hash();
                        store.load(&id, at(0)).await.expect("load");
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_secs(2)).await;
        stop.store(true, Ordering::Relaxed);
        writer.await.expect("writer");
        for reader in readers {
            reader.await.expect("reader");
        }

        // Every commit appends at least one 4 KiB page to the WAL (two or three, measured),
        // so a WAL that never starts over is larger than this; one that does stays a fraction
        // of it (a third at most, measured: what 100 ms of commits append past 64 frames).
        let commits = commits.load(Ordering::Relaxed);
        let wal = std::fs::metadata(dir.path().join("app.db-wal")).map_or(0, |m| m.len());
        assert!(commits > 200, "only {commits} commits");
        assert!(
            wal < commits * 4096,
            "WAL of {wal} bytes after {commits} commits"
        );
    }
    /// `pragma synchronous` of the store's writing connection: 1 NORMAL, 2 FULL.
    async fn writer_synchronous(store: &SqliteStore) -> i64 {
        let mut writer = store.writer.lock().await;
        sqlx::query_scalar("pragma synchronous")
            .fetch_one(&mut writer.connection)
            .await
            .expect("pragma")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn touches_alone_commit_relaxed_and_every_other_write_durably() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let config = DatabaseConfig {
            url: format!("sqlite://{}", dir.path().join("app.db").display()),
            ..DatabaseConfig::default()
        };
        let Database::Sqlite(pool) = Database::connect(&config).await.expect("connect") else {
            panic!("not SQLite");
        };
        let store = SqliteStore::open(pool).await.expect("open");
        let id = SessionId::generate().hash();
        let mut record = Record {
            data: SessionData::new(),
            version: 0,
            created_at: at(0),
            expires_at: at(1000),
            user: None,
        };
        assert!(store.create(&id, &record).await.expect("create"));
        assert_eq!(
            writer_synchronous(&store).await,
            2,
            "a create waits for the disk"
        );

        assert!(store.touch(&id, at(2000), at(10)).await.expect("touch"));
        assert_eq!(writer_synchronous(&store).await, 1, "a touch does not");

        record.version = 1;
        assert!(store.save(&id, &record, at(10)).await.expect("save"));
        assert_eq!(writer_synchronous(&store).await, 2, "a save does again");

        assert!(store.touch(&id, at(3000), at(10)).await.expect("touch"));
        store.delete_expired(at(10), 10).await.expect("purge");
        assert_eq!(writer_synchronous(&store).await, 2, "so does the purge");

        assert!(store.touch(&id, at(4000), at(10)).await.expect("touch"));
        let new = SessionId::generate().hash();
        record.version = 2;
        let rekeyed = store
            .rekey(&id, &new, &record, at(10))
            .await
            .expect("rekey");
        assert_eq!(rekeyed, Rekeyed::Done);
        assert_eq!(writer_synchronous(&store).await, 2, "and a rekey");
    }
}
