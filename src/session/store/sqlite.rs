//! The SQLite session store: the embedded default.
//!
//! SQLite lets one connection write at a time, and connections that wait for the lock sleep in
//! growing steps, which wrecks latency under load. So reads go through the pool (WAL lets them run
//! beside the writer), while every write goes to one writer task that owns a dedicated
//! connection and commits whatever writes are waiting together, in one transaction: one fsync
//! for a whole batch (group commit). Each caller hears back only after its batch committed.

use sqlx::{Connection, Row, SqliteConnection, SqliteExecutor, SqlitePool};

use super::batch::{Batch, Batcher, Job, Write, Written};
use super::{
    Record, Rekeyed, SessionStore, StoreStats, decode_data, encode_data, is_unique_violation,
};
use crate::session::{IdHash, SessionError};

/// Sessions in a SQLite database (see `migrations/sqlite`).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    writer: Batcher<Write, Written>,
}

impl SqliteStore {
    /// Opens the store on `pool`, taking one of its connections for the writer task.
    pub async fn open(pool: SqlitePool) -> Result<Self, SessionError> {
        let connection = pool.acquire().await?.detach();
        let writer = Batcher::spawn(Writer { connection });
        Ok(Self { pool, writer })
    }

    /// Applies the embedded migrations in `migrations/sqlite`.
    pub async fn migrate(pool: &SqlitePool) -> Result<(), sqlx::migrate::MigrateError> {
        sqlx::migrate!("migrations/sqlite").run(pool).await
    }

    async fn write(&self, write: Write) -> Result<Written, SessionError> {
        self.writer.submit(write).await
    }
}

#[async_trait::async_trait]
impl SessionStore for SqliteStore {
    async fn create(&self, id: &IdHash, record: &Record) -> Result<bool, SessionError> {
        let write = Write::Create {
            id: *id,
            record: record.clone(),
        };
        self.write(write).await.map(Written::applied)
    }

    async fn load(&self, id: &IdHash, now: i64) -> Result<Option<Record>, SessionError> {
        let row = sqlx::query(
            r#"
            select data, version, created_at, expires_at
            from sessions
            where id_hash = ? and expires_at > ?
            "#,
        )
        .bind(id.as_bytes())
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(Record {
            data: decode_data(row.try_get("data")?)?,
            version: row.try_get("version")?,
            created_at: row.try_get("created_at")?,
            expires_at: row.try_get("expires_at")?,
        }))
    }

    async fn save(&self, id: &IdHash, record: &Record, now: i64) -> Result<bool, SessionError> {
        let write = Write::Save {
            id: *id,
            record: record.clone(),
            now,
        };
        self.write(write).await.map(Written::applied)
    }

    async fn touch(&self, id: &IdHash, expires_at: i64, now: i64) -> Result<(), SessionError> {
        let write = Write::Touch {
            id: *id,
            expires_at,
            now,
        };
        self.write(write).await.map(drop)
    }

    async fn rekey(&self, old: &IdHash, new: &IdHash, now: i64) -> Result<Rekeyed, SessionError> {
        let write = Write::Rekey {
            old: *old,
            new: *new,
            now,
        };
        self.write(write).await?.rekeyed()
    }

    async fn delete(&self, id: &IdHash) -> Result<(), SessionError> {
        self.write(Write::Delete { id: *id }).await.map(drop)
    }

    async fn delete_expired(&self, now: i64, limit: u32) -> Result<u64, SessionError> {
        self.write(Write::DeleteExpired { now, limit })
            .await?
            .count()
    }

    async fn stats(&self, now: i64) -> Result<StoreStats, SessionError> {
        let row = sqlx::query(
            r#"
            select
                count(*) filter (where expires_at > ?1) as live,
                count(*) filter (where expires_at <= ?1) as expired,
                min(created_at) filter (where expires_at > ?1) as oldest
            from sessions
            "#,
        )
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(StoreStats {
            live: row.try_get("live")?,
            expired: row.try_get("expired")?,
            oldest_live_created_at: row.try_get("oldest")?,
        })
    }
}

/// The writer task's side: the dedicated connection.
struct Writer {
    connection: SqliteConnection,
}

#[async_trait::async_trait]
impl Batch<Write, Written> for Writer {
    /// Applies the batch in one transaction. Anything failing but a duplicate ID rolls the
    /// whole batch back and every caller gets the error: no one is told "saved" about a write
    /// that is not on disk.
    async fn run(&mut self, batch: &[Job<Write, Written>]) -> Result<Vec<Written>, SessionError> {
        // IMMEDIATE takes the write lock up front (waiting up to the busy timeout for another
        // process) rather than failing half-way through the batch.
        let mut transaction = self.connection.begin_with("begin immediate").await?;
        let mut outcomes = Vec::with_capacity(batch.len());
        for job in batch {
            outcomes.push(execute(&mut transaction, &job.request).await?);
        }
        transaction.commit().await?;
        Ok(outcomes)
    }
}

async fn execute(
    connection: &mut SqliteConnection,
    write: &Write,
) -> Result<Written, SessionError> {
    match write {
        Write::Create { id, record } => create(connection, id, record).await,
        Write::Save { id, record, now } => save(connection, id, record, *now).await,
        Write::Touch {
            id,
            expires_at,
            now,
        } => touch(connection, id, *expires_at, *now).await,
        Write::Rekey { old, new, now } => rekey(connection, old, new, *now).await,
        Write::Delete { id } => delete(connection, id).await,
        Write::DeleteExpired { now, limit } => delete_expired(connection, *now, *limit).await,
    }
}

async fn create<'e>(
    connection: impl SqliteExecutor<'e>,
    id: &IdHash,
    record: &Record,
) -> Result<Written, SessionError> {
    let result = sqlx::query(
        r#"
        insert into sessions (id_hash, data, version, created_at, expires_at)
        values (?, ?, ?, ?, ?)
        "#,
    )
    .bind(id.as_bytes())
    .bind(encode_data(&record.data)?)
    .bind(record.version)
    .bind(record.created_at)
    .bind(record.expires_at)
    .execute(connection)
    .await;
    match result {
        Ok(_) => Ok(Written::Applied(true)),
        Err(e) if is_unique_violation(&e) => Ok(Written::Applied(false)),
        Err(e) => Err(e.into()),
    }
}

async fn save<'e>(
    connection: impl SqliteExecutor<'e>,
    id: &IdHash,
    record: &Record,
    now: i64,
) -> Result<Written, SessionError> {
    let result = sqlx::query(
        r#"
        update sessions
        set data = ?, version = ?, expires_at = ?
        where id_hash = ? and version = ? and expires_at > ?
        "#,
    )
    .bind(encode_data(&record.data)?)
    .bind(record.version)
    .bind(record.expires_at)
    .bind(id.as_bytes())
    .bind(record.version - 1)
    .bind(now)
    .execute(connection)
    .await?;
    Ok(Written::Applied(result.rows_affected() == 1))
}

async fn touch<'e>(
    connection: impl SqliteExecutor<'e>,
    id: &IdHash,
    expires_at: i64,
    now: i64,
) -> Result<Written, SessionError> {
    let result = sqlx::query(
        r#"
        update sessions
        set expires_at = ?1
        where id_hash = ?2 and expires_at > ?3 and expires_at < ?1
        "#,
    )
    .bind(expires_at)
    .bind(id.as_bytes())
    .bind(now)
    .execute(connection)
    .await?;
    Ok(Written::Applied(result.rows_affected() == 1))
}

async fn rekey<'e>(
    connection: impl SqliteExecutor<'e>,
    old: &IdHash,
    new: &IdHash,
    now: i64,
) -> Result<Written, SessionError> {
    let result = sqlx::query(
        r#"
        update sessions
        set id_hash = ?
        where id_hash = ? and expires_at > ?
        "#,
    )
    .bind(new.as_bytes())
    .bind(old.as_bytes())
    .bind(now)
    .execute(connection)
    .await;
    let outcome = match result {
        Ok(done) if done.rows_affected() == 1 => Rekeyed::Done,
        Ok(_) => Rekeyed::Gone,
        Err(e) if is_unique_violation(&e) => Rekeyed::IdTaken,
        Err(e) => return Err(e.into()),
    };
    Ok(Written::Rekeyed(outcome))
}

async fn delete<'e>(
    connection: impl SqliteExecutor<'e>,
    id: &IdHash,
) -> Result<Written, SessionError> {
    let result = sqlx::query("delete from sessions where id_hash = ?")
        .bind(id.as_bytes())
        .execute(connection)
        .await?;
    Ok(Written::Applied(result.rows_affected() == 1))
}

async fn delete_expired<'e>(
    connection: impl SqliteExecutor<'e>,
    now: i64,
    limit: u32,
) -> Result<Written, SessionError> {
    // The subquery walks the expires_at index, so a batch costs O(limit), not a table scan.
    let result = sqlx::query(
        r#"
        delete from sessions
        where id_hash in (
            select id_hash from sessions where expires_at <= ? limit ?
        )
        "#,
    )
    .bind(now)
    .bind(i64::from(limit))
    .execute(connection)
    .await?;
    Ok(Written::Count(result.rows_affected()))
}
