//! latch's tables: its migrations (in `migrations/sqlite` and `migrations/postgres`), applied at
//! start and recorded in a table of latch's own, `_latch_migrations`, so they never mix with the
//! app's `_sqlx_migrations`. The files name the default table, `sessions`; for another
//! ([`Table`]) latch renames what they create as it applies them, and records them apart.
//!
//! An app that runs its own sqlx migrations may instead copy latch's files into its set: a
//! migration already recorded in `_sqlx_migrations` under the same version and checksum was
//! applied by the app, and latch leaves it alone.

use std::collections::HashSet;

use sqlx::SqlSafeStr as _;
use sqlx::migrate::{Migration, Migrator};

use crate::{SetupError, Table};

/// The table latch records its applied migrations in, for the default sessions table (another
/// table has its own: see [`Table`]).
pub const MIGRATIONS_TABLE: &str = "_latch_migrations";

/// The table sqlx-cli and `sqlx::migrate!` record an app's migrations in.
const APP_MIGRATIONS_TABLE: &str = "_sqlx_migrations";

#[cfg(feature = "sqlite")]
static SQLITE: Migrator = sqlx::migrate!("migrations/sqlite");
#[cfg(feature = "postgres")]
static POSTGRES: Migrator = sqlx::migrate!("migrations/postgres");

/// Applies `migrator`'s migrations for `table` to `pool`, but for those the app's own
/// `_sqlx_migrations` records under the same version and checksum; `exists` asks whether a
/// table exists. A sessions table that neither latch nor the app's copy of latch's migrations
/// made is refused.
macro_rules! apply {
    ($pool:expr, $table:expr, $exists:expr, $migrator:expr) => {{
        let exists = |name: String| async move {
            sqlx::query_scalar::<_, bool>($exists)
                .bind(name)
                .fetch_one($pool)
                .await
                .map_err(sqlx::migrate::MigrateError::from)
        };
        let applied_by_app: HashSet<(i64, Vec<u8>)> =
            if $table.is_default() && exists(APP_MIGRATIONS_TABLE.to_owned()).await? {
                sqlx::query_as(APPLIED_BY_APP)
                    .fetch_all($pool)
                    .await
                    .map_err(sqlx::migrate::MigrateError::from)?
                    .into_iter()
                    .collect()
            } else {
                HashSet::new()
            };
        let migrations_table = $table.migrations_table();
        if exists($table.to_string()).await? {
            let first = $migrator
                .iter()
                .next()
                .map_or(0, |migration| migration.version);
            let made_by_latch = exists(migrations_table.clone()).await?
                && sqlx::query_scalar::<_, bool>(sqlx::AssertSqlSafe(format!(
                    "select exists (select 1 from {migrations_table} where version = $1)"
                )))
                .bind(first)
                .fetch_one($pool)
                .await
                .map_err(sqlx::migrate::MigrateError::from)?;
            let made_by_app = applied_by_app.iter().any(|(version, _)| *version == first);
            if !made_by_latch && !made_by_app {
                return Err(SetupError::TableTaken($table.to_string()));
            }
        }
        own_migrator($migrator, $table, &applied_by_app)
            .run($pool)
            .await
            .map_err(SetupError::Migrate)
    }};
}

/// Creates or updates the sessions table `table` in a SQLite database. Safe to call on every
/// start.
///
/// # Errors
///
/// [`SetupError::TableTaken`] when a table of that name exists and is not latch's;
/// [`SetupError::Migrate`] with the step that failed.
#[cfg(feature = "sqlite")]
pub async fn apply_sqlite(pool: &sqlx::SqlitePool, table: &Table) -> Result<(), SetupError> {
    apply!(
        pool,
        table,
        "select exists (select 1 from sqlite_master where type = 'table' and name = $1)",
        &SQLITE
    )
}

/// Creates or updates the sessions table `table` (and its schema, if it names one) and its
/// triggers in a PostgreSQL database. Safe to call on every start, and from several instances
/// at once (sqlx takes an advisory lock).
///
/// # Errors
///
/// [`SetupError::TableTaken`] when a table of that name exists and is not latch's;
/// [`SetupError::Migrate`] with the step that failed.
#[cfg(feature = "postgres")]
pub async fn apply_postgres(pool: &sqlx::PgPool, table: &Table) -> Result<(), SetupError> {
    apply!(pool, table, "select to_regclass($1) is not null", &POSTGRES)
}

const APPLIED_BY_APP: &str = "select version, checksum from _sqlx_migrations where success";

/// `all`, for `table`, without what the app's own migrations already applied, recorded in
/// latch's table for it.
fn own_migrator(
    all: &Migrator,
    table: &Table,
    applied_by_app: &HashSet<(i64, Vec<u8>)>,
) -> Migrator {
    let pending = all
        .iter()
        .filter(|migration| {
            !applied_by_app.contains(&(migration.version, migration.checksum.to_vec()))
        })
        .map(|migration| {
            if table.is_default() {
                return migration.clone();
            }
            // Renamed for the table; the checksum is of the renamed text, the same every run.
            Migration::new(
                migration.version,
                migration.description.clone(),
                migration.migration_type,
                sqlx::AssertSqlSafe(table.rename(migration.sql.as_str())).into_sql_str(),
                migration.no_tx,
            )
        })
        .collect();
    let mut migrator = Migrator::with_migrations(pending);
    migrator.dangerous_set_table_name(table.migrations_table());
    if let Some(schema) = table.schema() {
        migrator.create_schema(schema.to_owned());
    }
    // Versions latch's table records but this set leaves out (the app applied them) are fine.
    migrator.set_ignore_missing(true);
    migrator
}
