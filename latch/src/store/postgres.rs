//! The PostgreSQL session store: for several app instances sharing one database.
//!
//! Every query is a network round trip, so the store makes as few as it can: it has a
//! dedicated connection for loads and one for writes, reconnecting after a failure, so a
//! request pays no pool checkout and no liveness ping. Behind the batching layer ([`Batched`]),
//! every load waiting goes out as one query and every write waiting as one transaction (one
//! commit, one WAL flush). Each caller hears back after its batch finished.

use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool};
use time::OffsetDateTime;
use tokio::sync::Mutex;

use super::batch::{Round, Write, WriteBatches, mark, plan, returned_ids, write_one};
use super::users::postgres as users;
use super::{
    Batched, CachedStore, FoundRow, Record, Rekeyed, SessionStore, UserColumns, cached,
    encode_data, found_in_order, listen,
};
use super::{ExpiredDeletion, StoreError, UserIndex, unix_ms};
use crate::user::{Device, Revoke};
use crate::{IdHash, SetupError, Table, schema};

/// Sessions in a PostgreSQL database (see `migrations/postgres`).
///
/// On its own it serves one load and one write at a time;
/// [`batched`](WriteBatches::batched) puts the batching layer around it, which is how
/// [`Database::session_store`](crate::Database) builds it.
#[derive(Debug)]
pub struct PostgresStore {
    pool: PgPool,
    table: Table,
    /// The `application_name` of the reader's and writer's connections, which the trigger puts
    /// on every change they make.
    instance: String,
    reader: Mutex<Dedicated>,
    writer: Mutex<Dedicated>,
    /// Where the change listener connects: the database itself, when `pool` goes through a
    /// pooler (see [`open_behind_pooler`](Self::open_behind_pooler)).
    direct: Option<PgPool>,
}

impl PostgresStore {
    /// Applies latch's schema (see [`schema`](crate::schema)) and opens the store on `pool`'s
    /// database. Loads and writes go out, on first use, on two connections of its own with the
    /// pool's settings, named with an instance name no other store shares: other instances'
    /// caches hear of this one's changes by it (see [`Batched::<PostgresStore>::cached`]).
    ///
    /// # Errors
    ///
    /// [`SetupError::Migrate`] when the schema cannot be applied.
    pub async fn open(pool: PgPool) -> Result<Self, SetupError> {
        Self::open_table(pool, Table::default()).await
    }

    /// [`open`](Self::open), with the sessions in `table` rather than `sessions` (and in its
    /// schema, created if missing).
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open), and [`SetupError::TableTaken`] when a table of that name
    /// exists and is not latch's.
    pub async fn open_table(pool: PgPool, table: Table) -> Result<Self, SetupError> {
        Self::open_on(pool, None, table).await
    }

    /// [`open_table`](Self::open_table) for a `pool` that reaches the database through a
    /// connection pooler (PgBouncer): latch's migrations (which hold an advisory lock for the
    /// session) and the cache's change listener (`LISTEN`, which needs a session of its own)
    /// go through `direct`, a pool that reaches the database itself; everything else through
    /// `pool`. `direct` keeps one connection open while the listener runs.
    ///
    /// # Errors
    ///
    /// As [`open_table`](Self::open_table).
    pub async fn open_behind_pooler(
        pool: PgPool,
        direct: PgPool,
        table: Table,
    ) -> Result<Self, SetupError> {
        Self::open_on(pool, Some(direct), table).await
    }

    async fn open_on(
        pool: PgPool,
        direct: Option<PgPool>,
        table: Table,
    ) -> Result<Self, SetupError> {
        schema::apply_postgres(direct.as_ref().unwrap_or(&pool), &table).await?;
        let instance = listen::instance_name();
        let options = pool
            .connect_options()
            .as_ref()
            .clone()
            .application_name(&instance);
        let timeout = pool.options().get_acquire_timeout();
        Ok(Self {
            pool,
            table,
            instance,
            reader: Mutex::new(Dedicated::new(options.clone(), timeout)),
            writer: Mutex::new(Dedicated::new(options, timeout)),
            direct,
        })
    }

    /// This store behind the batching layer: what [`WriteBatches::batched`] does, callable
    /// without importing the trait.
    pub fn batched(self) -> Batched<Self> {
        Batched::new(self)
    }

    /// One purge batch, as written for the default table: `$1` is now, `$2` the batch size.
    ///
    /// The subquery walks the `expires_at` index (the `order by` keeps the planner on it even
    /// when nearly every row has expired) and the IDs it returns are deleted through the
    /// primary key, so a batch costs O(limit). Written as `id_hash in (subquery)`, Postgres
    /// planned a hash semi-join over a scan of the whole table, several times slower
    /// (`docs/BENCHMARKS.md`, "Purge at scale"). `skip locked` lets several instances purge
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

impl Batched<PostgresStore> {
    /// This store behind a cache of up to `capacity` sessions that other instances' changes
    /// evict: a task listens for them (`LISTEN latch_sessions`) until the cache is dropped, a
    /// cache hit waits until every change committed before it has been heard, and while the
    /// listener is down the cache is bypassed.
    /// Start it inside a Tokio runtime (Rocket's is one): the listener is a task there.
    pub fn cached(self, capacity: usize) -> CachedStore<Self> {
        let (barrier, barriers) = cached::barrier();
        let inner = self.inner();
        let pool = inner.direct.clone().unwrap_or_else(|| inner.pool.clone());
        let instance = inner.instance.clone();
        let channel = self.inner().table.channel();
        let cached = CachedStore::distrusted(self, capacity).with_barrier(barrier);
        listen::spawn(pool, &cached, channel, instance, barriers);
        cached
    }
}

#[async_trait::async_trait]
impl SessionStore for PostgresStore {
    async fn create(&self, id: &IdHash, record: &Record) -> Result<bool, StoreError> {
        let write = Write::Create {
            id: *id,
            record: record.clone(),
        };
        write_one(self, write).await
    }

    async fn load(&self, id: &IdHash, now: OffsetDateTime) -> Result<Option<Record>, StoreError> {
        let mut found = self.load_batch(&[(*id, now)]).await?;
        Ok(found.pop().flatten())
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
        // On the pool: a duplicate ID would abort a batch's whole transaction.
        let mut connection = self.pool.acquire().await?;
        users::rekey(&self.table, &mut connection, old, new, record, now, None).await
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
impl ExpiredDeletion for PostgresStore {
    async fn delete_expired(&self, now: OffsetDateTime, limit: u32) -> Result<u64, StoreError> {
        // On the pool, so a purge batch never holds up request writes.
        let result = sqlx::query(self.table.sql(Self::PURGE_BATCH))
            .bind(unix_ms(now))
            .bind(i64::from(limit))
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected())
    }
}

#[async_trait::async_trait]
impl UserIndex for PostgresStore {
    async fn sign_in(
        &self,
        old: Option<&IdHash>,
        new: &IdHash,
        record: &Record,
        now: OffsetDateTime,
    ) -> Result<Rekeyed, StoreError> {
        let mut connection = self.pool.acquire().await?;
        users::sign_in(&self.table, &mut connection, old, new, record, now).await
    }

    async fn user_sessions(
        &self,
        user_id: &str,
        current: Option<&IdHash>,
        now: OffsetDateTime,
    ) -> Result<Vec<Device>, StoreError> {
        let mut connection = self.pool.acquire().await?;
        users::user_sessions(&self.table, &mut connection, user_id, current, now).await
    }

    async fn revoke(&self, user_id: &str, which: Revoke<'_>) -> Result<Vec<IdHash>, StoreError> {
        let mut connection = self.pool.acquire().await?;
        users::revoke(&self.table, &mut connection, user_id, which).await
    }

    async fn bump_auth_epoch(
        &self,
        user_id: &str,
        keep: Option<&IdHash>,
    ) -> Result<Vec<IdHash>, StoreError> {
        let mut connection = self.pool.acquire().await?;
        users::bump_auth_epoch(&self.table, &mut connection, user_id, keep).await
    }
}

#[async_trait::async_trait]
impl WriteBatches for PostgresStore {
    const LOADS_IN_BATCHES: bool = true;

    async fn write_batch(&self, writes: &[Write]) -> Result<Vec<bool>, StoreError> {
        let mut writer = self.writer.lock().await;
        let result = write_many(writer.connection().await?, &self.table, writes).await;
        writer.forget_after(result)
    }

    async fn load_batch(
        &self,
        loads: &[(IdHash, OffsetDateTime)],
    ) -> Result<Vec<Option<Record>>, StoreError> {
        let mut reader = self.reader.lock().await;
        let result = load_many(reader.connection().await?, &self.table, loads).await;
        reader.forget_after(result)
    }
}

/// A connection of the store's own, opened on demand and dropped after any failure (it may be
/// the connection that broke), so the next query starts on a fresh one.
#[derive(Debug)]
struct Dedicated {
    options: PgConnectOptions,
    timeout: Duration,
    connection: Option<PgConnection>,
}

impl Dedicated {
    fn new(options: PgConnectOptions, timeout: Duration) -> Self {
        Self {
            options,
            timeout,
            connection: None,
        }
    }

    async fn connection(&mut self) -> Result<&mut PgConnection, StoreError> {
        let connection = match self.connection.take() {
            Some(connection) => connection,
            None => tokio::time::timeout(self.timeout, PgConnection::connect_with(&self.options))
                .await
                .map_err(|_| sqlx::Error::PoolTimedOut)??,
        };
        Ok(self.connection.insert(connection))
    }

    fn forget_after<T>(&mut self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if result.is_err() {
            self.connection = None;
        }
        result
    }
}

async fn load_many(
    connection: &mut PgConnection,
    table: &Table,
    batch: &[(IdHash, OffsetDateTime)],
) -> Result<Vec<Option<Record>>, StoreError> {
    let ids: Vec<Vec<u8>> = batch.iter().map(|(id, _)| id.0.to_vec()).collect();
    let earliest = batch
        .iter()
        .map(|(_, now)| unix_ms(*now))
        .min()
        .unwrap_or(0);
    let rows: Vec<FoundRow> = sqlx::query_as(table.sql(
        "select id_hash, data, version, created_at, expires_at,
            user_id, handle, signed_in_at, user_agent, address
         from sessions
         where id_hash = any($1) and expires_at > $2",
    ))
    .bind(ids)
    .bind(earliest)
    .fetch_all(connection)
    .await?;
    found_in_order(batch, rows)
}

/// Every write of `batch` in one transaction (or one statement, when that is all it takes).
async fn write_many(
    connection: &mut PgConnection,
    table: &Table,
    batch: &[Write],
) -> Result<Vec<bool>, StoreError> {
    let rounds = plan(batch);
    let mut outcomes = vec![false; batch.len()];
    if let [round] = rounds.as_slice()
        && round.statements() <= 1
    {
        // One statement is atomic by itself: save the BEGIN and COMMIT round trips.
        run_round(connection, table, batch, round, &mut outcomes).await?;
        return Ok(outcomes);
    }
    let mut transaction = connection.begin().await?;
    for round in &rounds {
        run_round(&mut transaction, table, batch, round, &mut outcomes).await?;
    }
    transaction.commit().await?;
    Ok(outcomes)
}

/// One statement per kind of write, each taking its rows as arrays (`unnest`), so the SQL text,
/// and with it the prepared statement, is the same whatever the batch size. Rows are passed in
/// ID order, so concurrent batches from several instances tend to lock rows in the same order.
async fn run_round(
    connection: &mut PgConnection,
    table: &Table,
    batch: &[Write],
    round: &Round,
    outcomes: &mut [bool],
) -> Result<(), StoreError> {
    for (creates, with_user) in [(&round.creates, false), (&round.user_creates, true)] {
        if !creates.is_empty() {
            create_many(connection, table, batch, creates, with_user, outcomes).await?;
        }
    }
    if !round.saves.is_empty() {
        save_many(connection, table, batch, &round.saves, outcomes).await?;
    }
    if !round.touches.is_empty() {
        touch_many(connection, table, batch, &round.touches, outcomes).await?;
    }
    if !round.deletes.is_empty() {
        delete_many(connection, table, batch, &round.deletes, outcomes).await?;
    }
    Ok(())
}

/// `indices` in session ID order (see `run_round`).
fn in_id_order(batch: &[Write], indices: &[usize]) -> Vec<usize> {
    let mut indices = indices.to_vec();
    indices.sort_by_key(|&i| batch[i].id().0);
    indices
}

/// Inserts the sessions of `indices`; `with_user` adds the user columns (anonymous sessions
/// leave them null, through the shorter statement).
async fn create_many(
    connection: &mut PgConnection,
    table: &Table,
    batch: &[Write],
    indices: &[usize],
    with_user: bool,
    outcomes: &mut [bool],
) -> Result<(), StoreError> {
    // `do nothing` on a taken ID: it is reported by its absence from `returning`.
    const ANONYMOUS: &str = "
        insert into sessions (id_hash, data, version, created_at, expires_at)
        select * from unnest($1::bytea[], $2::text[], $3::int8[], $4::int8[], $5::int8[])
        on conflict (id_hash) do nothing
        returning id_hash";
    const SIGNED_IN: &str = "
        insert into sessions (id_hash, data, version, created_at, expires_at, last_seen,
            user_id, handle, signed_in_at, user_agent, address)
        select id_hash, data, version, created_at, expires_at, created_at,
            user_id, handle, signed_in_at, user_agent, address
        from unnest($1::bytea[], $2::text[], $3::int8[], $4::int8[], $5::int8[],
            $6::text[], $7::bytea[], $8::int8[], $9::text[], $10::text[])
            as v (id_hash, data, version, created_at, expires_at,
                user_id, handle, signed_in_at, user_agent, address)
        on conflict (id_hash) do nothing
        returning id_hash";
    let indices = in_id_order(batch, indices);
    let mut columns = Columns::default();
    let mut users = UserArrays::default();
    for &i in &indices {
        if let Write::Create { id, record } = &batch[i] {
            columns.push(
                id,
                Some(encode_data(&record.data)?),
                [
                    record.version,
                    unix_ms(record.created_at),
                    unix_ms(record.expires_at),
                ],
            );
            if with_user {
                users.push(&UserColumns::of(record));
            }
        }
    }
    let query = if with_user {
        users.bind(columns.bind(sqlx::query(table.sql(SIGNED_IN))))
    } else {
        columns.bind(sqlx::query(table.sql(ANONYMOUS)))
    };
    let created = returned_ids(query.fetch_all(&mut *connection).await?)?;
    mark(batch, &indices, &created, outcomes);
    Ok(())
}

/// The user columns of created sessions, as arrays for `unnest` (nulls for anonymous ones).
#[derive(Default)]
struct UserArrays {
    user_ids: Vec<Option<String>>,
    handles: Vec<Option<Vec<u8>>>,
    signed_in_at: Vec<Option<i64>>,
    user_agents: Vec<Option<String>>,
    addresses: Vec<Option<String>>,
}

impl UserArrays {
    fn push(&mut self, user: &UserColumns<'_>) {
        self.user_ids.push(user.user_id.map(str::to_owned));
        self.handles.push(user.handle.map(<[u8]>::to_vec));
        self.signed_in_at.push(user.signed_in_at);
        self.user_agents.push(user.user_agent.map(str::to_owned));
        self.addresses.push(user.address.map(str::to_owned));
    }

    /// Binds `$6`..`$10`.
    fn bind(
        self,
        query: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments> {
        query
            .bind(self.user_ids)
            .bind(self.handles)
            .bind(self.signed_in_at)
            .bind(self.user_agents)
            .bind(self.addresses)
    }
}

async fn save_many(
    connection: &mut PgConnection,
    table: &Table,
    batch: &[Write],
    indices: &[usize],
    outcomes: &mut [bool],
) -> Result<(), StoreError> {
    let indices = in_id_order(batch, indices);
    let mut columns = Columns::default();
    for &i in &indices {
        if let Write::Save { id, record, now } = &batch[i] {
            columns.push(
                id,
                Some(encode_data(&record.data)?),
                [record.version, unix_ms(record.expires_at), unix_ms(*now)],
            );
        }
    }
    // Written only if the row still has the version the writer read and has not expired.
    let query = sqlx::query(table.sql(
        r#"
        update sessions s
        set data = v.data, version = v.version, expires_at = v.expires_at, last_seen = v.now
        from unnest($1::bytea[], $2::text[], $3::int8[], $4::int8[], $5::int8[])
            as v (id_hash, data, version, expires_at, now)
        where s.id_hash = v.id_hash and s.version = v.version - 1 and s.expires_at > v.now
        returning s.id_hash
        "#,
    ));
    let saved = returned_ids(columns.bind(query).fetch_all(&mut *connection).await?)?;
    mark(batch, &indices, &saved, outcomes);
    Ok(())
}

async fn touch_many(
    connection: &mut PgConnection,
    table: &Table,
    batch: &[Write],
    indices: &[usize],
    outcomes: &mut [bool],
) -> Result<(), StoreError> {
    let indices = in_id_order(batch, indices);
    let mut columns = Columns::default();
    for &i in &indices {
        if let Write::Touch {
            id,
            expires_at,
            now,
        } = &batch[i]
        {
            columns.push(id, None, [unix_ms(*expires_at), unix_ms(*now), 0]);
        }
    }
    // Live sessions only, and deadlines only move forward.
    let query = sqlx::query(table.sql(
        r#"
        update sessions s
        set expires_at = v.expires_at, last_seen = v.now
        from unnest($1::bytea[], $2::int8[], $3::int8[]) as v (id_hash, expires_at, now)
        where s.id_hash = v.id_hash and s.expires_at > v.now and s.expires_at < v.expires_at
        returning s.id_hash
        "#,
    ))
    .bind(columns.ids)
    .bind(columns.numbers[0].clone())
    .bind(columns.numbers[1].clone());
    let touched = returned_ids(query.fetch_all(&mut *connection).await?)?;
    mark(batch, &indices, &touched, outcomes);
    Ok(())
}

async fn delete_many(
    connection: &mut PgConnection,
    table: &Table,
    batch: &[Write],
    indices: &[usize],
    outcomes: &mut [bool],
) -> Result<(), StoreError> {
    let indices = in_id_order(batch, indices);
    let ids: Vec<Vec<u8>> = indices.iter().map(|&i| batch[i].id().0.to_vec()).collect();
    let query =
        sqlx::query(table.sql("delete from sessions where id_hash = any($1) returning id_hash"))
            .bind(ids);
    let deleted = returned_ids(query.fetch_all(&mut *connection).await?)?;
    mark(batch, &indices, &deleted, outcomes);
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
