//! The app's own tables (`migrations/walkthrough/`), applied at start and recorded in a table of
//! the app's own, `_walkthrough_migrations`, apart from latch's and from sqlx-cli's.

use latch::Database;
use sqlx::migrate::{MigrateError, Migrator};

/// Where the app records its migrations.
pub const MIGRATIONS_TABLE: &str = "_walkthrough_migrations";

static SQLITE: Migrator = sqlx::migrate!("migrations/walkthrough/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("migrations/walkthrough/postgres");

/// Creates or updates the app's tables. Safe on every start, and from several instances at
/// once on Postgres (sqlx takes an advisory lock).
///
/// # Errors
///
/// The [`MigrateError`] of the step that failed.
pub async fn apply(database: &Database) -> Result<(), MigrateError> {
    match database {
        Database::Sqlite(pool) => recorded_apart(&SQLITE).run(pool).await,
        Database::Postgres(pool) => recorded_apart(&POSTGRES).run(pool).await,
    }
}

/// `migrations`, recorded in [`MIGRATIONS_TABLE`].
fn recorded_apart(migrations: &Migrator) -> Migrator {
    let mut migrator = Migrator::with_migrations(migrations.iter().cloned().collect());
    migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
    migrator
}
