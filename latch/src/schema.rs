//! latch's tables: its migrations (in `migrations/sqlite` and `migrations/postgres`), applied at
//! start and recorded in a table of latch's own, `_latch_migrations`, so they never mix with the
//! app's `_sqlx_migrations`.
//!
//! An app that runs its own sqlx migrations may instead copy latch's files into its set: a
//! migration already recorded in `_sqlx_migrations` under the same version and checksum was
//! applied by the app, and latch leaves it alone.

use std::collections::HashSet;

use sqlx::migrate::{MigrateError, Migrator};

/// The table latch records its applied migrations in.
pub const MIGRATIONS_TABLE: &str = "_latch_migrations";

/// The table sqlx-cli and `sqlx::migrate!` record an app's migrations in.
const APP_MIGRATIONS_TABLE: &str = "_sqlx_migrations";

#[cfg(feature = "sqlite")]
static SQLITE: Migrator = sqlx::migrate!("migrations/sqlite");
#[cfg(feature = "postgres")]
static POSTGRES: Migrator = sqlx::migrate!("migrations/postgres");

/// Applies `migrator`'s migrations to `pool`, but for those the app's own `_sqlx_migrations`
/// records under the same version and checksum; `exists` asks whether that table exists.
macro_rules! apply {
    ($pool:expr, $exists:expr, $migrator:expr) => {{
        let app_has_table: bool = sqlx::query_scalar($exists)
            .bind(APP_MIGRATIONS_TABLE)
            .fetch_one($pool)
            .await?;
        let applied_by_app: HashSet<(i64, Vec<u8>)> = if app_has_table {
            sqlx::query_as(APPLIED_BY_APP)
                .fetch_all($pool)
                .await?
                .into_iter()
                .collect()
        } else {
            HashSet::new()
        };
        own_migrator($migrator, &applied_by_app).run($pool).await
    }};
}

/// Creates or updates the `sessions` table in a SQLite database. Safe to call on every start.
///
/// # Errors
///
/// The [`MigrateError`] of the step that failed.
#[cfg(feature = "sqlite")]
pub async fn apply_sqlite(pool: &sqlx::SqlitePool) -> Result<(), MigrateError> {
    apply!(
        pool,
        "select exists (select 1 from sqlite_master where type = 'table' and name = ?)",
        &SQLITE
    )
}

/// Creates or updates the `sessions` table and its triggers in a PostgreSQL database. Safe to
/// call on every start, and from several instances at once (sqlx takes an advisory lock).
///
/// # Errors
///
/// The [`MigrateError`] of the step that failed.
#[cfg(feature = "postgres")]
pub async fn apply_postgres(pool: &sqlx::PgPool) -> Result<(), MigrateError> {
    apply!(pool, "select to_regclass($1) is not null", &POSTGRES)
}

const APPLIED_BY_APP: &str = "select version, checksum from _sqlx_migrations where success";

/// `all` without what the app's own migrations already applied, recorded in latch's table.
fn own_migrator(all: &Migrator, applied_by_app: &HashSet<(i64, Vec<u8>)>) -> Migrator {
    let pending = all
        .iter()
        .filter(|migration| {
            !applied_by_app.contains(&(migration.version, migration.checksum.to_vec()))
        })
        .cloned()
        .collect();
    let mut migrator = Migrator::with_migrations(pending);
    migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
    // Versions latch's table records but this set leaves out (the app applied them) are fine.
    migrator.set_ignore_missing(true);
    migrator
}
