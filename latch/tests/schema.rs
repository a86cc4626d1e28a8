//! latch's schema and an app's own sqlx migrations never fight over `_sqlx_migrations`: latch
//! records its migrations in `_latch_migrations`, an app's migrator still runs beside it, and an
//! app that applied latch's files itself (as `sqlx migrate run` does) is left alone.
//!
//! Postgres runs when `LATCH_TEST_POSTGRES_URL` names a server, as in `contract.rs`.

#![cfg(all(feature = "sqlite", feature = "postgres"))]

use std::borrow::Cow;
use std::path::Path;

mod common;

use common::Scratch;
use latch::{Database, DatabaseConfig, SessionConfig};
use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};

/// Latch on a scratch database, as the `Latch` fairing opens it.
async fn open_latch(scratch: &Scratch) -> Database {
    let database = Database::connect(&DatabaseConfig {
        url: scratch.url.clone(),
        ..DatabaseConfig::default()
    })
    .await
    .expect("connect");
    database
        .session_store(&latch::Table::default(), &SessionConfig::default())
        .await
        .expect("latch opens");
    database
}

/// An app's own migration set: one table of its own.
fn app_migrator() -> Migrator {
    Migrator::with_migrations(vec![Migration::new(
        1,
        Cow::Borrowed("create app table"),
        MigrationType::Simple,
        sqlx::AssertSqlSafe("create table app_things (id integer primary key)").into_sql_str(),
        false,
    )])
}

/// Latch's migration files for `backend`, read from disk as sqlx-cli reads them.
async fn latch_files(backend: &str) -> Migrator {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    Migrator::new(folder)
        .await
        .expect("latch's migration files")
}

/// Versions recorded in `table`, or `None` when it does not exist.
async fn recorded(database: &Database, table: &str) -> Option<Vec<i64>> {
    let sql = format!("select version from {table} order by version");
    let rows: Result<Vec<i64>, sqlx::Error> = match database {
        Database::Sqlite(pool) => {
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .fetch_all(pool)
                .await
        }
        Database::Postgres(pool) => {
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .fetch_all(pool)
                .await
        }
    };
    rows.ok()
}

async fn run_app_migrations(database: &Database, migrator: &Migrator) {
    match database {
        Database::Sqlite(pool) => migrator.run(pool).await,
        Database::Postgres(pool) => migrator.run(pool).await,
    }
    .expect("the app's migrations run");
}

async fn each_backend<F, Fut>(check: F)
where
    F: Fn(Scratch) -> Fut,
    Fut: Future<Output = Scratch>,
{
    check(Scratch::sqlite().await).await.finish().await;
    if let Some(scratch) = Scratch::postgres().await {
        check(scratch).await.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latch_records_its_migrations_in_a_table_of_its_own() {
    each_backend(|scratch| async move {
        let database = open_latch(&scratch).await;
        let expected: Vec<i64> = latch_files(scratch.backend())
            .await
            .iter()
            .map(|m| m.version)
            .collect();
        assert_eq!(
            recorded(&database, "_latch_migrations").await,
            Some(expected)
        );
        assert_eq!(recorded(&database, "_sqlx_migrations").await, None);
        // A second start applies nothing and fails on nothing.
        open_latch(&scratch).await;
        scratch
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apps_own_migrations_run_beside_latchs_in_either_order() {
    each_backend(|scratch| async move {
        let database = open_latch(&scratch).await;
        // The app's migrator does not see latch's versions as "applied but missing".
        run_app_migrations(&database, &app_migrator()).await;
        assert_eq!(recorded(&database, "_sqlx_migrations").await, Some(vec![1]));
        // Nor does latch see the app's.
        open_latch(&scratch).await;
        run_app_migrations(&database, &app_migrator()).await;
        scratch
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latchs_files_applied_by_the_app_are_left_alone() {
    each_backend(|scratch| async move {
        let database = Database::connect(&DatabaseConfig {
            url: scratch.url.clone(),
            ..DatabaseConfig::default()
        })
        .await
        .expect("connect");
        // What `sqlx migrate run --source latch/migrations/<backend>` does.
        let files = latch_files(scratch.backend()).await;
        run_app_migrations(&database, &files).await;
        let versions: Vec<i64> = files.iter().map(|m| m.version).collect();

        open_latch(&scratch).await;

        assert_eq!(
            recorded(&database, "_sqlx_migrations").await,
            Some(versions)
        );
        assert_eq!(
            recorded(&database, "_latch_migrations").await,
            Some(Vec::new())
        );
        scratch
    })
    .await;
}
