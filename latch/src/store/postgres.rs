//! The PostgreSQL session store: for several app instances sharing one database.
//!
//! Every query is a network round trip, so the store makes as few as it can: it has a
//! dedicated connection for loads and one for writes, reconnecting after a failure, so a
//! request pays no pool checkout and no liveness ping. Behind the batching layer ([`Batched`]),
//! every load waiting goes out as one query and every write waiting as one transaction (one
//! commit, one WAL flush). Each caller hears back after its batch finished.

use std::sync::Arc;

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool};
use time::OffsetDateTime;
use tokio::sync::Mutex;

use super::batch::{Round, Write, WriteBatches, mark, plan, returned_ids, write_one};
use super::users::{Target, postgres as users};
use super::{
    Batched, CachedStore, FoundRow, Record, Rekeyed, SessionStore, UserColumns, cached,
    encode_data, found_in_order, listen,
};
use super::{ExpiredDeletion, StoreError, UserIndex, unix_ms};
use crate::user::{Device, Revoke};
use crate::{IdHash, SetupError, Table, hosts, schema};

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
    /// How statements go out on `pool` and the dedicated connections.
    statements: Statements,
}

/// How the store's statements go out: prepared once and reused when its connections are
/// sessions of their own, or so that a transaction pooler can carry them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Statements {
    /// Named prepared statements, kept per connection: one round trip a statement.
    Prepared,
    /// Unnamed statements inside an explicit transaction. A transaction pooler (PgBouncer in
    /// `pool_mode = transaction`) hands each transaction whichever server connection is free,
    /// so a named statement prepared in one may be missing, or taken, in the next; and sqlx
    /// parses and executes in two exchanges, each its own implicit transaction outside an
    /// explicit one. Inside `begin` … `commit` every exchange stays on one server connection.
    Unnamed,
}

impl Statements {
    /// Whether sqlx may name and keep the statement (`Query::persistent`).
    fn persistent(self) -> bool {
        self == Self::Prepared
    }
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
        // The listener's and the migrations' connection must be a session of its own: behind a
        // transaction pooler a LISTEN hears nothing and the migrations' lock is stranded.
        let (session, setting) = match &direct {
            Some(direct) => (direct, "database_direct_url"),
            None => (&pool, "database_url"),
        };
        if !listen::delivers(session)
            .await
            .map_err(SetupError::Connect)?
        {
            return Err(SetupError::NoSession(setting));
        }
        schema::apply_postgres(session, &table).await?;
        // With a direct pool beside it, `pool` goes through a pooler, perhaps in transaction mode.
        let statements = if direct.is_some() {
            Statements::Unnamed
        } else {
            Statements::Prepared
        };
        let instance = listen::instance_name();
        Ok(Self {
            reader: Mutex::new(Dedicated::new(pool.clone(), instance.clone())),
            writer: Mutex::new(Dedicated::new(pool.clone(), instance.clone())),
            pool,
            table,
            instance,
            direct,
            statements,
        })
    }

    /// Runs `operation` on a connection of the pool, as [`run_as`] does.
    async fn on_pool<T>(
        &self,
        operation: impl AsyncFnOnce(&mut PgConnection, Target<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut connection = self.pool.acquire().await?;
        run_as(&mut connection, &self.table, self.statements, operation).await
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
        self.on_pool(async |connection, target| {
            users::rekey(target, connection, old, new, record, now, None).await
        })
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
impl ExpiredDeletion for PostgresStore {
    async fn delete_expired(&self, now: OffsetDateTime, limit: u32) -> Result<u64, StoreError> {
        // On the pool, so a purge batch never holds up request writes.
        self.on_pool(async |connection, target| {
            let result = query(target, Self::PURGE_BATCH)
                .bind(unix_ms(now))
                .bind(i64::from(limit))
                .execute(connection)
                .await?;
            Ok(result.rows_affected())
        })
        .await
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
        self.on_pool(async |connection, target| {
            users::sign_in(target, connection, old, new, record, now).await
        })
        .await
    }

    async fn user_sessions(
        &self,
        user_id: &str,
        current: Option<&IdHash>,
        now: OffsetDateTime,
    ) -> Result<Vec<Device>, StoreError> {
        self.on_pool(async |connection, target| {
            users::user_sessions(target, connection, user_id, current, now).await
        })
        .await
    }

    async fn revoke(&self, user_id: &str, which: Revoke<'_>) -> Result<Vec<IdHash>, StoreError> {
        self.on_pool(async |connection, target| {
            users::revoke(target, connection, user_id, which).await
        })
        .await
    }

    async fn bump_auth_epoch(
        &self,
        user_id: &str,
        keep: Option<&IdHash>,
    ) -> Result<Vec<IdHash>, StoreError> {
        self.on_pool(async |connection, target| {
            users::bump_auth_epoch(target, connection, user_id, keep).await
        })
        .await
    }
}

#[async_trait::async_trait]
impl WriteBatches for PostgresStore {
    const LOADS_IN_BATCHES: bool = true;

    async fn write_batch(&self, writes: &[Write]) -> Result<Vec<bool>, StoreError> {
        let mut writer = self.writer.lock().await;
        let connection = writer.connection().await?;
        let result = write_many(connection, &self.table, self.statements, writes).await;
        writer.forget_after(result)
    }

    async fn load_batch(
        &self,
        loads: &[(IdHash, OffsetDateTime)],
    ) -> Result<Vec<Option<Record>>, StoreError> {
        let mut reader = self.reader.lock().await;
        let connection = reader.connection().await?;
        let result = load_many(connection, &self.table, self.statements, loads).await;
        reader.forget_after(result)
    }
}

/// A connection of the store's own, opened on demand with the pool's settings and dropped
/// after any failure (it may be the connection that broke), so the next query starts on a
/// fresh one. It is dropped too when the pool has moved to another server (a failover: see
/// `hosts`), so it never keeps reading from the old one.
#[derive(Debug)]
struct Dedicated {
    pool: PgPool,
    /// This store's instance name (see [`PostgresStore::instance`]).
    application_name: String,
    connection: Option<(PgConnection, Arc<PgConnectOptions>)>,
}

impl Dedicated {
    fn new(pool: PgPool, application_name: String) -> Self {
        Self {
            pool,
            application_name,
            connection: None,
        }
    }

    async fn connection(&mut self) -> Result<&mut PgConnection, StoreError> {
        let target = self.pool.connect_options();
        let kept = self
            .connection
            .take()
            .filter(|(_, connected_to)| Arc::ptr_eq(connected_to, &target));
        let connection = match kept {
            Some((connection, _)) => connection,
            None => {
                let options = target
                    .as_ref()
                    .clone()
                    .application_name(&self.application_name);
                let timeout = self.pool.options().get_acquire_timeout();
                let mut connection =
                    tokio::time::timeout(timeout, PgConnection::connect_with(&options))
                        .await
                        .map_err(|_| sqlx::Error::PoolTimedOut)??;
                // Not on a standby (the old primary, rejoined before the pool has moved): it
                // would answer loads with what it has replayed so far.
                if !hosts::accepts_writes(&mut connection).await? {
                    return Err(StoreError::unavailable(hosts::read_only()));
                }
                connection
            }
        };
        let (connection, _) = self.connection.insert((connection, target));
        Ok(connection)
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
    statements: Statements,
    batch: &[(IdHash, OffsetDateTime)],
) -> Result<Vec<Option<Record>>, StoreError> {
    let ids: Vec<Vec<u8>> = batch.iter().map(|(id, _)| id.0.to_vec()).collect();
    let earliest = batch
        .iter()
        .map(|(_, now)| unix_ms(*now))
        .min()
        .unwrap_or(0);
    let rows: Vec<FoundRow> = run_as(connection, table, statements, async |connection, target| {
        let rows = sqlx::query_as(target.text(
            "select id_hash, data, version, created_at, expires_at,
                user_id, handle, signed_in_at, user_agent, address
             from sessions
             where id_hash = any($1) and expires_at > $2",
        ))
        .bind(ids)
        .bind(earliest)
        .persistent(target.persistent)
        .fetch_all(connection)
        .await?;
        Ok(rows)
    })
    .await?;
    found_in_order(batch, rows)
}

/// Runs `operation` on `connection` with `table`'s statements as `statements` says: as they
/// come when they may be prepared, inside a transaction when not (see [`Statements::Unnamed`]).
async fn run_as<T>(
    connection: &mut PgConnection,
    table: &Table,
    statements: Statements,
    operation: impl AsyncFnOnce(&mut PgConnection, Target<'_>) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let target = Target {
        table,
        persistent: statements.persistent(),
    };
    match statements {
        Statements::Prepared => operation(connection, target).await,
        Statements::Unnamed => {
            let mut transaction = connection.begin().await?;
            let outcome = operation(&mut transaction, target).await?;
            transaction.commit().await?;
            Ok(outcome)
        }
    }
}

/// Every write of `batch` in one transaction (or one statement, when that is all it takes).
async fn write_many(
    connection: &mut PgConnection,
    table: &Table,
    statements: Statements,
    batch: &[Write],
) -> Result<Vec<bool>, StoreError> {
    let rounds = plan(batch);
    let mut outcomes = vec![false; batch.len()];
    let target = Target {
        table,
        persistent: statements.persistent(),
    };
    if let [round] = rounds.as_slice()
        && round.statements() <= 1
        && statements == Statements::Prepared
    {
        // One statement is atomic by itself: save the BEGIN and COMMIT round trips.
        run_round(connection, target, batch, round, &mut outcomes).await?;
        return Ok(outcomes);
    }
    let mut transaction = connection.begin().await?;
    for round in &rounds {
        run_round(&mut transaction, target, batch, round, &mut outcomes).await?;
    }
    transaction.commit().await?;
    Ok(outcomes)
}

/// One statement per kind of write, each taking its rows as arrays (`unnest`), so the SQL text,
/// and with it the prepared statement, is the same whatever the batch size. Rows are passed in
/// ID order, so concurrent batches from several instances tend to lock rows in the same order.
async fn run_round(
    connection: &mut PgConnection,
    target: Target<'_>,
    batch: &[Write],
    round: &Round,
    outcomes: &mut [bool],
) -> Result<(), StoreError> {
    for (creates, with_user) in [(&round.creates, false), (&round.user_creates, true)] {
        if !creates.is_empty() {
            create_many(connection, target, batch, creates, with_user, outcomes).await?;
        }
    }
    if !round.saves.is_empty() {
        save_many(connection, target, batch, &round.saves, outcomes).await?;
    }
    if !round.touches.is_empty() {
        touch_many(connection, target, batch, &round.touches, outcomes).await?;
    }
    if !round.deletes.is_empty() {
        delete_many(connection, target, batch, &round.deletes, outcomes).await?;
    }
    Ok(())
}

/// `template`, written for the default table, as a query on `target`'s.
fn query(target: Target<'_>, template: &'static str) -> PgQuery<'static> {
    sqlx::query(target.text(template)).persistent(target.persistent)
}

type PgQuery<'a> = sqlx::query::Query<'a, sqlx::Postgres, sqlx::postgres::PgArguments>;

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
    target: Target<'_>,
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
        users.bind(columns.bind(query(target, SIGNED_IN)))
    } else {
        columns.bind(query(target, ANONYMOUS))
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
    fn bind(self, query: PgQuery<'_>) -> PgQuery<'_> {
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
    target: Target<'_>,
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
    let query = query(
        target,
        r#"
        update sessions s
        set data = v.data, version = v.version, expires_at = v.expires_at, last_seen = v.now
        from unnest($1::bytea[], $2::text[], $3::int8[], $4::int8[], $5::int8[])
            as v (id_hash, data, version, expires_at, now)
        where s.id_hash = v.id_hash and s.version = v.version - 1 and s.expires_at > v.now
        returning s.id_hash
        "#,
    );
    let saved = returned_ids(columns.bind(query).fetch_all(&mut *connection).await?)?;
    mark(batch, &indices, &saved, outcomes);
    Ok(())
}

async fn touch_many(
    connection: &mut PgConnection,
    target: Target<'_>,
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
    let query = query(
        target,
        r#"
        update sessions s
        set expires_at = v.expires_at, last_seen = v.now
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
    Ok(())
}

async fn delete_many(
    connection: &mut PgConnection,
    target: Target<'_>,
    batch: &[Write],
    indices: &[usize],
    outcomes: &mut [bool],
) -> Result<(), StoreError> {
    let indices = in_id_order(batch, indices);
    let ids: Vec<Vec<u8>> = indices.iter().map(|&i| batch[i].id().0.to_vec()).collect();
    let query = query(
        target,
        "delete from sessions where id_hash = any($1) returning id_hash",
    )
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
    fn bind(self, query: PgQuery<'_>) -> PgQuery<'_> {
        let [first, second, third] = self.numbers;
        query
            .bind(self.ids)
            .bind(self.data)
            .bind(first)
            .bind(second)
            .bind(third)
    }
}
