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
use sqlx::{Connection, Row};

use super::batch::{Batch, Batcher, Job, Round, Write, Written, mark, plan, returned_ids};
use super::{
    Record, Rekeyed, SessionStore, StoreStats, decode_data, encode_data, is_unique_violation,
};
use crate::session::{IdHash, SessionError};

/// Reader tasks (and connections). More let one batch of loads go out while another waits for
/// its answer, but on 2 cores two readers measured no better than one (W1 0.34 vs 0.36 of W0 in
/// back-to-back runs): one reader makes bigger batches and fewer queries.
const READERS: usize = 1;

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
        let readers = (0..READERS)
            .map(|_| Reader(Dedicated::new(Arc::clone(&options), timeout)))
            .collect();
        let reader = Batcher::spawn_many(readers);
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

    /// One purge batch: `$1` is now, `$2` the batch size.
    ///
    /// The subquery walks the `expires_at` index (the `order by` keeps the planner on it even
    /// when nearly every row has expired) and the IDs it returns are deleted through the
    /// primary key, so a batch costs O(limit). Written as `id_hash in (subquery)`, Postgres
    /// planned a hash semi-join over a scan of the whole table: 70–80 ms per 1,000-row batch
    /// with 300,000 expired rows, against 10 ms now. `skip locked` lets several instances purge
    /// at once, each taking rows the others are not already deleting.
    pub const PURGE_BATCH: &str = "\
        delete from sessions \
        where id_hash = any(array(\
            select id_hash from sessions where expires_at <= $1 \
            order by expires_at \
            limit $2 \
            for update skip locked\
        ))";
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

    async fn rekey(
        &self,
        old: &IdHash,
        new: &IdHash,
        record: &Record,
        now: i64,
    ) -> Result<Rekeyed, SessionError> {
        // On its own connection: a duplicate ID would abort a batch's whole transaction.
        let result = sqlx::query(
            r#"
            update sessions
            set id_hash = $1, data = $2, version = $3, expires_at = $4
            where id_hash = $5 and version = $3 - 1 and expires_at > $6
            "#,
        )
        .bind(new.as_bytes())
        .bind(encode_data(&record.data)?)
        .bind(record.version)
        .bind(record.expires_at)
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
        // On the pool, so a purge batch never holds up request writes.
        let result = sqlx::query(Self::PURGE_BATCH)
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
    let rounds = plan(batch);
    let mut outcomes = vec![Written::Applied(false); batch.len()];
    if let [round] = rounds.as_slice()
        && round.statements() <= 1
    {
        // One statement is atomic by itself: save the BEGIN and COMMIT round trips.
        run_round(connection, batch, round, &mut outcomes).await?;
        return Ok(outcomes);
    }
    let mut transaction = connection.begin().await?;
    for round in &rounds {
        run_round(&mut transaction, batch, round, &mut outcomes).await?;
    }
    transaction.commit().await?;
    Ok(outcomes)
}

/// One statement per kind of write, each taking its rows as arrays (`unnest`), so the SQL text,
/// and with it the prepared statement, is the same whatever the batch size. Rows are passed in
/// ID order, so concurrent batches from several instances tend to lock rows in the same order.
async fn run_round(
    connection: &mut PgConnection,
    batch: &[Job<Write, Written>],
    round: &Round,
    outcomes: &mut [Written],
) -> Result<(), SessionError> {
    let sorted = |indices: &[usize]| {
        let mut indices = indices.to_vec();
        indices.sort_by_key(|&i| batch[i].request.id().map(|id| id.0));
        indices
    };
    if !round.creates.is_empty() {
        let indices = sorted(&round.creates);
        let mut columns = Columns::default();
        for &i in &indices {
            if let Write::Create { id, record } = &batch[i].request {
                columns.push(
                    id,
                    Some(encode_data(&record.data)?),
                    [record.version, record.created_at, record.expires_at],
                );
            }
        }
        // `do nothing` on a taken ID: it is reported by its absence from `returning`.
        let query = sqlx::query(
            r#"
            insert into sessions (id_hash, data, version, created_at, expires_at)
            select * from unnest($1::bytea[], $2::text[], $3::int8[], $4::int8[], $5::int8[])
            on conflict (id_hash) do nothing
            returning id_hash
            "#,
        );
        let created = returned_ids(columns.bind(query).fetch_all(&mut *connection).await?)?;
        mark(batch, &indices, &created, outcomes);
    }
    if !round.saves.is_empty() {
        let indices = sorted(&round.saves);
        let mut columns = Columns::default();
        for &i in &indices {
            if let Write::Save { id, record, now } = &batch[i].request {
                columns.push(
                    id,
                    Some(encode_data(&record.data)?),
                    [record.version, record.expires_at, *now],
                );
            }
        }
        // Written only if the row still has the version the writer read and has not expired.
        let query = sqlx::query(
            r#"
            update sessions s
            set data = v.data, version = v.version, expires_at = v.expires_at
            from unnest($1::bytea[], $2::text[], $3::int8[], $4::int8[], $5::int8[])
                as v (id_hash, data, version, expires_at, now)
            where s.id_hash = v.id_hash and s.version = v.version - 1 and s.expires_at > v.now
            returning s.id_hash
            "#,
        );
        let saved = returned_ids(columns.bind(query).fetch_all(&mut *connection).await?)?;
        mark(batch, &indices, &saved, outcomes);
    }
    if !round.touches.is_empty() {
        let indices = sorted(&round.touches);
        let mut columns = Columns::default();
        for &i in &indices {
            if let Write::Touch {
                id,
                expires_at,
                now,
            } = &batch[i].request
            {
                columns.push(id, None, [*expires_at, *now, 0]);
            }
        }
        // Live sessions only, and deadlines only move forward.
        let query = sqlx::query(
            r#"
            update sessions s
            set expires_at = v.expires_at
            from unnest($1::bytea[], $2::int8[], $3::int8[]) as v (id_hash, expires_at, now)
            where s.id_hash = v.id_hash and s.expires_at > v.now and s.expires_at < v.expires_at
            returning s.id_hash
            "#,
        )
        .bind(columns.ids)
        .bind(columns.numbers[0].clone())
        .bind(columns.numbers[1].clone());
        let touched = returned_ids(query.fetch_all(&mut *connection).await?)?;
        mark(batch, &indices, &touched, outcomes);
    }
    if !round.deletes.is_empty() {
        let indices = sorted(&round.deletes);
        let ids: Vec<Vec<u8>> = indices
            .iter()
            .filter_map(|&i| batch[i].request.id().map(|id| id.0.to_vec()))
            .collect();
        let query =
            sqlx::query("delete from sessions where id_hash = any($1) returning id_hash").bind(ids);
        let deleted = returned_ids(query.fetch_all(&mut *connection).await?)?;
        mark(batch, &indices, &deleted, outcomes);
    }
    Ok(())
}

/// Column arrays for an `unnest` statement: IDs, optional JSON data, and three integers a row.
#[derive(Default)]
struct Columns {
    ids: Vec<Vec<u8>>,
    data: Vec<String>,
    numbers: [Vec<i64>; 3],
}

impl Columns {
    fn push(&mut self, id: &IdHash, data: Option<String>, numbers: [i64; 3]) {
        self.ids.push(id.0.to_vec());
        self.data.extend(data);
        for (column, value) in self.numbers.iter_mut().zip(numbers) {
            column.push(value);
        }
    }

    /// Binds `$1` ids, `$2` data, `$3`..`$5` the numbers.
    fn bind(
        self,
        query: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments> {
        let [first, second, third] = self.numbers;
        query
            .bind(self.ids)
            .bind(self.data)
            .bind(first)
            .bind(second)
            .bind(third)
    }
}
