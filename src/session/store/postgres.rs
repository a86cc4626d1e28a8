//! The PostgreSQL session store: for several app instances sharing one database.
//!
//! Every query is a network round trip, so the store makes as few as it can. Loads are queued
//! for one reader task that fetches every waiting session with a single query; writes are queued
//! for one writer task that applies every waiting write in a single transaction (one commit,
//! one WAL flush). Both own a dedicated connection, reconnecting after a failure, so a request
//! pays no pool checkout and no liveness ping. Each caller hears back after its batch finished.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool};
use sqlx::{Connection, PgExecutor, Row};

use super::batch::{Batch, Batcher, Job, Write, Written};
use super::{
    Record, Rekeyed, SessionStore, StoreStats, decode_data, encode_data, is_unique_violation,
};
use crate::session::{IdHash, SessionError};

/// Sessions in a PostgreSQL database (see `migrations/postgres`).
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    reader: Batcher<(IdHash, i64), Option<Record>>,
    writer: Batcher<Write, Written>,
}

impl PostgresStore {
    /// Opens the store on `pool`'s database; the reader and writer tasks connect on first use.
    /// Must be called within a Tokio runtime.
    pub fn open(pool: PgPool) -> Self {
        let options = pool.connect_options();
        let timeout = pool.options().get_acquire_timeout();
        let reader = Batcher::spawn(Reader(Dedicated::new(Arc::clone(&options), timeout)));
        let writer = Batcher::spawn(Writer(Dedicated::new(options, timeout)));
        Self {
            pool,
            reader,
            writer,
        }
    }

    /// Applies the embedded migrations in `migrations/postgres`.
    pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
        sqlx::migrate!("migrations/postgres").run(pool).await
    }
}

#[async_trait::async_trait]
impl SessionStore for PostgresStore {
    async fn create(&self, id: &IdHash, record: &Record) -> Result<bool, SessionError> {
        let write = Write::Create {
            id: *id,
            record: record.clone(),
        };
        self.writer.submit(write).await.map(Written::applied)
    }

    async fn load(&self, id: &IdHash, now: i64) -> Result<Option<Record>, SessionError> {
        self.reader.submit((*id, now)).await
    }

    async fn save(&self, id: &IdHash, record: &Record, now: i64) -> Result<bool, SessionError> {
        let write = Write::Save {
            id: *id,
            record: record.clone(),
            now,
        };
        self.writer.submit(write).await.map(Written::applied)
    }

    async fn touch(&self, id: &IdHash, expires_at: i64, now: i64) -> Result<(), SessionError> {
        let write = Write::Touch {
            id: *id,
            expires_at,
            now,
        };
        self.writer.submit(write).await.map(drop)
    }

    async fn rekey(&self, old: &IdHash, new: &IdHash, now: i64) -> Result<Rekeyed, SessionError> {
        // On its own connection: a duplicate ID would abort a batch's whole transaction.
        let result = sqlx::query(
            r#"
            update sessions
            set id_hash = $1
            where id_hash = $2 and expires_at > $3
            "#,
        )
        .bind(new.as_bytes())
        .bind(old.as_bytes())
        .bind(now)
        .execute(&self.pool)
        .await;
        match result {
            Ok(done) if done.rows_affected() == 1 => Ok(Rekeyed::Done),
            Ok(_) => Ok(Rekeyed::Gone),
            Err(e) if is_unique_violation(&e) => Ok(Rekeyed::IdTaken),
            Err(e) => Err(e.into()),
        }
    }

    async fn delete(&self, id: &IdHash) -> Result<(), SessionError> {
        self.writer
            .submit(Write::Delete { id: *id })
            .await
            .map(drop)
    }

    async fn delete_expired(&self, now: i64, limit: u32) -> Result<u64, SessionError> {
        // On its own connection, so a purge batch never holds up request writes.
        // The subquery walks the expires_at index, so a batch costs O(limit), not a table scan;
        // `skip locked` lets several instances purge at once, each taking rows the others are
        // not already deleting instead of queueing behind them.
        let result = sqlx::query(
            r#"
            delete from sessions
            where id_hash in (
                select id_hash from sessions where expires_at <= $1
                limit $2
                for update skip locked
            )
            "#,
        )
        .bind(now)
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected())
    }

    async fn stats(&self, now: i64) -> Result<StoreStats, SessionError> {
        let row = sqlx::query(
            r#"
            select
                count(*) filter (where expires_at > $1) as live,
                count(*) filter (where expires_at <= $1) as expired,
                min(created_at) filter (where expires_at > $1) as oldest
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

/// A connection owned by one batch task, opened on demand and dropped after any failure (it
/// may be the connection that broke), so the next batch starts on a fresh one.
struct Dedicated {
    options: Arc<PgConnectOptions>,
    timeout: Duration,
    connection: Option<PgConnection>,
}

impl Dedicated {
    fn new(options: Arc<PgConnectOptions>, timeout: Duration) -> Self {
        Self {
            options,
            timeout,
            connection: None,
        }
    }

    async fn connection(&mut self) -> Result<&mut PgConnection, SessionError> {
        let connection = match self.connection.take() {
            Some(connection) => connection,
            None => tokio::time::timeout(self.timeout, PgConnection::connect_with(&self.options))
                .await
                .map_err(|_| sqlx::Error::PoolTimedOut)??,
        };
        Ok(self.connection.insert(connection))
    }

    fn forget_after<T>(&mut self, result: Result<T, SessionError>) -> Result<T, SessionError> {
        if result.is_err() {
            self.connection = None;
        }
        result
    }
}

/// The reader task: one query for every load waiting.
struct Reader(Dedicated);

#[async_trait::async_trait]
impl Batch<(IdHash, i64), Option<Record>> for Reader {
    async fn run(
        &mut self,
        batch: &[Job<(IdHash, i64), Option<Record>>],
    ) -> Result<Vec<Option<Record>>, SessionError> {
        let result = load_many(self.0.connection().await?, batch).await;
        self.0.forget_after(result)
    }
}

async fn load_many(
    connection: &mut PgConnection,
    batch: &[Job<(IdHash, i64), Option<Record>>],
) -> Result<Vec<Option<Record>>, SessionError> {
    let ids: Vec<Vec<u8>> = batch.iter().map(|job| job.request.0.0.to_vec()).collect();
    let earliest = batch.iter().map(|job| job.request.1).min().unwrap_or(0);
    let rows = sqlx::query(
        r#"
        select id_hash, data, version, created_at, expires_at
        from sessions
        where id_hash = any($1) and expires_at > $2
        "#,
    )
    .bind(ids)
    .bind(earliest)
    .fetch_all(connection)
    .await?;
    let mut found = HashMap::with_capacity(rows.len());
    for row in rows {
        let hash: Vec<u8> = row.try_get("id_hash")?;
        let Ok(hash) = <[u8; 32]>::try_from(hash) else {
            continue;
        };
        let record = Record {
            data: decode_data(row.try_get("data")?)?,
            version: row.try_get("version")?,
            created_at: row.try_get("created_at")?,
            expires_at: row.try_get("expires_at")?,
        };
        found.insert(IdHash(hash), record);
    }
    // Each load asked at its own `now`: a row that expired in between is not returned to it.
    Ok(batch
        .iter()
        .map(|job| {
            let (id, now) = &job.request;
            found.get(id).filter(|r| r.expires_at > *now).cloned()
        })
        .collect())
}

/// The writer task: every write waiting, in one transaction.
struct Writer(Dedicated);

#[async_trait::async_trait]
impl Batch<Write, Written> for Writer {
    async fn run(&mut self, batch: &[Job<Write, Written>]) -> Result<Vec<Written>, SessionError> {
        let result = write_many(self.0.connection().await?, batch).await;
        self.0.forget_after(result)
    }
}

async fn write_many(
    connection: &mut PgConnection,
    batch: &[Job<Write, Written>],
) -> Result<Vec<Written>, SessionError> {
    if let [job] = batch {
        // One write needs no transaction around it: save the BEGIN and COMMIT round trips.
        return execute(connection, &job.request).await.map(|w| vec![w]);
    }
    // Rows are locked in ID order, the same in every instance's batches, so two instances'
    // batches cannot deadlock. The sort is stable: writes to one session keep their order.
    let mut order: Vec<usize> = (0..batch.len()).collect();
    order.sort_by_key(|&i| batch[i].request.id().map(|id| id.0));
    let mut outcomes = vec![Written::Applied(false); batch.len()];
    let mut transaction = connection.begin().await?;
    for i in order {
        outcomes[i] = execute(&mut *transaction, &batch[i].request).await?;
    }
    transaction.commit().await?;
    Ok(outcomes)
}

async fn execute<'e>(
    connection: impl PgExecutor<'e>,
    write: &Write,
) -> Result<Written, SessionError> {
    let query = match write {
        // `on conflict do nothing` rather than an error, which would abort the whole batch.
        Write::Create { id, record } => sqlx::query(
            r#"
            insert into sessions (id_hash, data, version, created_at, expires_at)
            values ($1, $2, $3, $4, $5)
            on conflict (id_hash) do nothing
            "#,
        )
        .bind(id.as_bytes())
        .bind(encode_data(&record.data)?)
        .bind(record.version)
        .bind(record.created_at)
        .bind(record.expires_at),
        Write::Save { id, record, now } => sqlx::query(
            r#"
            update sessions
            set data = $1, version = $2, expires_at = $3
            where id_hash = $4 and version = $5 and expires_at > $6
            "#,
        )
        .bind(encode_data(&record.data)?)
        .bind(record.version)
        .bind(record.expires_at)
        .bind(id.as_bytes())
        .bind(record.version - 1)
        .bind(*now),
        Write::Touch {
            id,
            expires_at,
            now,
        } => sqlx::query(
            r#"
            update sessions
            set expires_at = $1
            where id_hash = $2 and expires_at > $3 and expires_at < $1
            "#,
        )
        .bind(*expires_at)
        .bind(id.as_bytes())
        .bind(*now),
        Write::Delete { id } => {
            sqlx::query("delete from sessions where id_hash = $1").bind(id.as_bytes())
        }
        // Taken on the pool (see `rekey` and `delete_expired`), never queued here.
        Write::Rekey { .. } => return Ok(Written::Rekeyed(Rekeyed::Gone)),
        Write::DeleteExpired { .. } => return Ok(Written::Count(0)),
    };
    let done = query.execute(connection).await?;
    Ok(Written::Applied(done.rows_affected() == 1))
}
