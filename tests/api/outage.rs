//! A database that goes away: 503s within seconds, the app stays up, and the same session works
//! again once the database is back.

use std::time::{Duration, Instant};

use rocket::http::Status;
use serde_json::json;
use sqlx::{AssertSqlSafe, Connection as _};

use crate::helpers::{Backend, TestApp, TestDb, assert_status, read};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_gives_503_quickly_and_the_session_survives_it() {
    let settings = [("database_timeout", json!(2))];
    let Some(app) = TestApp::spawn_with(Backend::Postgres, &settings).await else {
        return;
    };
    let TestDb::Postgres {
        admin_url, name, ..
    } = &app.db
    else {
        unreachable!()
    };
    let mut admin = sqlx::PgConnection::connect(admin_url).await.expect("admin");
    app.get("/user/Ada").await;
    let cookie = app.raw_cookie().expect("cookie");

    // Take the database away: refuse new connections and cut the app's open ones.
    sqlx::query(AssertSqlSafe(format!(
        r#"alter database "{name}" allow_connections false"#
    )))
    .execute(&mut admin)
    .await
    .expect("block");
    sqlx::query("select pg_terminate_backend(pid) from pg_stat_activity where datname = $1")
        .bind(name)
        .execute(&mut admin)
        .await
        .expect("terminate");
    // A cached session may still be served for the moment it takes the app to notice; the
    // first 503 must come within a few seconds.
    let started = Instant::now();
    let mut down = read(app.get_with_cookie("/user", &cookie).await).await;
    while down.0 == Status::Ok && started.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        down = read(app.get_with_cookie("/user", &cookie).await).await;
    }
    let took = started.elapsed();
    let api_down = read(app.get_with_cookie("/name", &cookie).await).await;
    let health_down = read(app.get("/healthz").await).await;

    assert_status(&down, Status::ServiceUnavailable);
    assert!(down.1.contains("unavailable"), "{}", down.1);
    assert!(took < Duration::from_secs(5), "503 took {took:?}");
    assert_status(&api_down, Status::ServiceUnavailable);
    assert!(api_down.1.starts_with("{\"error\""), "{}", api_down.1);
    assert_status(&health_down, Status::ServiceUnavailable);

    // Bring it back: the same cookie finds the same session.
    sqlx::query(AssertSqlSafe(format!(
        r#"alter database "{name}" allow_connections true"#
    )))
    .execute(&mut admin)
    .await
    .expect("unblock");
    let mut back = read(app.get_with_cookie("/user", &cookie).await).await;
    for _ in 0..20 {
        if back.0 == Status::Ok {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        back = read(app.get_with_cookie("/user", &cookie).await).await;
    }
    assert_status(&back, Status::Ok);
    assert!(back.1.contains("<h1>Ada</h1>"));
    assert_status(&read(app.get("/healthz").await).await, Status::Ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_sqlite_database_gives_503_for_writes_and_recovers() {
    let settings = [("database_timeout", json!(1))];
    let Some(app) = TestApp::spawn_with(Backend::Sqlite, &settings).await else {
        return;
    };
    app.get("/user/Ada").await;
    let mut other = sqlx::SqliteConnection::connect(app.db.url())
        .await
        .expect("open");

    // Another process holds the write lock.
    sqlx::query("begin immediate")
        .execute(&mut other)
        .await
        .expect("lock");
    let write = read(app.get("/user/Bob").await).await;
    let read_meanwhile = read(app.get("/user").await).await;
    sqlx::query("rollback")
        .execute(&mut other)
        .await
        .expect("unlock");
    let write_again = read(app.get("/user/Bob").await).await;

    assert_status(&write, Status::ServiceUnavailable);
    assert_status(&read_meanwhile, Status::Ok);
    assert!(
        read_meanwhile.1.contains("<h1>Ada</h1>"),
        "readers are not blocked (WAL)"
    );
    assert_status(&write_again, Status::Ok);
    assert_eq!(
        app.current_row().await.expect("row").data,
        json!({ "name": "Bob" })
    );
}
