//! The binary's operator commands (`migrate`, `purge`, `sessions stats`) and `GET /healthz`.

use std::process::{Command, Output};

use latch::time::{Duration, OffsetDateTime};
use latch::{Record, SessionData, SessionId};
use rocket::http::Status;

use crate::helpers::{Backend, TestApp, TestDb, backend_tests, read};

backend_tests!(
    migrate_applies_the_migrations_and_exits_zero,
    the_migrations_folder_applied_as_sqlx_cli_does_is_left_alone_by_latch,
    purge_removes_expired_sessions_and_says_how_many,
    sessions_stats_counts_live_and_expired_sessions,
    healthz_answers_200_when_the_database_does,
);

/// Runs `latch <args>` against `database_url`, away from the repo's own `data/`.
fn latch(database_url: &str, args: &[&str]) -> Output {
    let scratch = tempfile::tempdir().expect("temp dir");
    Command::new(env!("CARGO_BIN_EXE_latch"))
        .args(args)
        .current_dir(scratch.path())
        .env("DATABASE_URL", database_url)
        .env("ROCKET_DATABASE_TIMEOUT", "2")
        .output()
        .expect("run the latch binary")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

async fn migrate_applies_the_migrations_and_exits_zero(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };

    let output = latch(db.url(), &["migrate"]);
    let again = latch(db.url(), &["migrate"]);

    assert!(output.status.success(), "{output:?}");
    assert!(stdout(&output).contains("migrations applied"));
    assert!(
        again.status.success(),
        "migrating twice is harmless: {again:?}"
    );
    let stats = latch(db.url(), &["sessions", "stats"]);
    assert!(stdout(&stats).contains("live sessions:     0"), "{stats:?}");
    assert_eq!(
        app_migrations(backend, db.url()).await,
        2,
        "the app's own tables too"
    );
}

/// Rows of `_walkthrough_migrations`, where the app records its own tables' migrations.
async fn app_migrations(backend: Backend, url: &str) -> i64 {
    use sqlx::Connection as _;
    let count = "select count(*) from _walkthrough_migrations";
    match backend {
        Backend::Sqlite => {
            let mut connection = sqlx::SqliteConnection::connect(url).await.expect("connect");
            sqlx::query_scalar(count)
                .fetch_one(&mut connection)
                .await
                .expect("count")
        }
        Backend::Postgres => {
            let mut connection = sqlx::PgConnection::connect(url).await.expect("connect");
            sqlx::query_scalar(count)
                .fetch_one(&mut connection)
                .await
                .expect("count")
        }
    }
}

/// `sqlx migrate run --source migrations/<backend>` (the README's way) records latch's files in
/// `_sqlx_migrations`; the binary then finds them there and applies nothing of its own.
async fn the_migrations_folder_applied_as_sqlx_cli_does_is_left_alone_by_latch(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    // Read from the folder as sqlx-cli reads it (through the symlinks to latch/migrations/).
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(match backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        });
    let migrator = sqlx::migrate::Migrator::new(folder)
        .await
        .expect("the migrations folder");
    let applied = migrator.iter().count();
    let (sqlx_rows, _) = migration_counts(backend, db.url(), Some(&migrator)).await;
    assert_eq!(sqlx_rows, i64::try_from(applied).expect("a count"));

    let migrate = latch(db.url(), &["migrate"]);
    let stats = latch(db.url(), &["sessions", "stats"]);

    assert!(migrate.status.success(), "{migrate:?}");
    assert!(stdout(&stats).contains("live sessions:     0"), "{stats:?}");
    let (sqlx_rows, latch_rows) = migration_counts(backend, db.url(), None).await;
    assert_eq!(sqlx_rows, i64::try_from(applied).expect("a count"));
    assert_eq!(
        latch_rows,
        Some(0),
        "latch applied its migrations a second time"
    );
}

/// Rows of `_sqlx_migrations` and of `_latch_migrations` (`None`: no such table) in the database
/// at `url`, after running `migrator` on it if given.
async fn migration_counts(
    backend: Backend,
    url: &str,
    migrator: Option<&sqlx::migrate::Migrator>,
) -> (i64, Option<i64>) {
    use sqlx::Connection as _;
    macro_rules! counts {
        ($connection:ty, $url:expr) => {{
            let mut connection = <$connection>::connect($url).await.expect("connect");
            if let Some(migrator) = migrator {
                migrator
                    .run(&mut connection)
                    .await
                    .expect("sqlx migrate run");
            }
            let count = |table: &str| format!("select count(*) from {table}");
            let sqlx_rows = sqlx::query_scalar(sqlx::AssertSqlSafe(count("_sqlx_migrations")))
                .fetch_one(&mut connection)
                .await
                .expect("_sqlx_migrations");
            let latch_rows = sqlx::query_scalar(sqlx::AssertSqlSafe(count("_latch_migrations")))
                .fetch_one(&mut connection)
                .await
                .ok();
            (sqlx_rows, latch_rows)
        }};
    }
    match backend {
        // Creating the file if missing, as `sqlx database create` does.
        Backend::Sqlite => counts!(sqlx::SqliteConnection, &format!("{url}?mode=rwc")),
        Backend::Postgres => counts!(sqlx::PgConnection, url),
    }
}

/// Stores sessions directly: `expired` already past their deadline, `live` good for a minute.
async fn seed(app: &TestApp, expired: usize, live: usize) {
    let store = app.store();
    let now = OffsetDateTime::now_utc();
    for i in 0..expired + live {
        let expires_at = if i < expired {
            now - Duration::SECOND
        } else {
            now + Duration::minutes(1)
        };
        let record = Record {
            data: SessionData::new(),
            version: 0,
            created_at: now - Duration::minutes(2),
            expires_at,
            user: None,
        };
        let id = SessionId::generate();
        assert!(store.create(&id.hash(), &record).await.expect("create"));
    }
}

async fn purge_removes_expired_sessions_and_says_how_many(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    seed(&app, 3, 2).await;

    let output = latch(app.db.url(), &["purge"]);

    assert!(output.status.success(), "{output:?}");
    assert_eq!(stdout(&output).trim(), "removed 3 expired sessions");
    assert_eq!(app.rows().await.len(), 2);
}

async fn sessions_stats_counts_live_and_expired_sessions(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    seed(&app, 4, 3).await;

    let output = latch(app.db.url(), &["sessions", "stats"]);

    assert!(output.status.success(), "{output:?}");
    let text = stdout(&output);
    assert!(text.contains("live sessions:     3"), "{text}");
    assert!(text.contains("expired, unpurged: 4"), "{text}");
    assert!(text.contains("(2 min ago)"), "{text}");
}

async fn healthz_answers_200_when_the_database_does(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };

    let health = read(app.get("/healthz").await).await;

    assert_eq!(health, (Status::Ok, "ok\n".to_owned()));
}

#[test]
fn a_bad_database_url_is_a_clear_error_and_a_non_zero_exit() {
    for (url, says) in [
        (
            "mysql://localhost/latch",
            "must start with `sqlite:` or `postgres:`",
        ),
        ("postgres://nobody@127.0.0.1:1/latch", "could not connect"),
        ("sqlite:///proc/latch/x.db", "could not create the folder"),
    ] {
        let output = latch(url, &["sessions", "stats"]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{url}: {output:?}");
        assert!(stderr.starts_with("error: "), "{stderr}");
        assert!(stderr.contains(says), "{url}: {stderr}");
    }
}

#[test]
fn help_lists_the_commands_and_unknown_commands_are_refused() {
    let help = latch("sqlite::memory:", &["--help"]);
    let unknown = latch("sqlite::memory:", &["frobnicate"]);

    let text = stdout(&help);
    for command in ["serve", "migrate", "purge", "sessions"] {
        assert!(text.contains(command), "{text}");
    }
    assert!(help.status.success());
    assert_eq!(unknown.status.code(), Some(2));
}
