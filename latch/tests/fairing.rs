//! The one-line integration: an app that attaches `Latch::fairing()` (or `Latch::with_store`)
//! and nothing else counts page views in a server-side session.

#![cfg(feature = "sqlite")]

use latch::{Key, Latch, Session, SessionError, SqliteStore};
use rocket::figment::Figment;
use rocket::figment::providers::{Format, Toml};
use rocket::http::Status;
use rocket::local::asynchronous::Client;
use rocket::{Build, Rocket, get, routes};

const VIEWS: Key<u64> = Key::new("views");

#[get("/")]
async fn index(session: Session<'_>) -> Result<String, SessionError> {
    let views = session
        .update(&VIEWS, |views| views.unwrap_or(0) + 1)
        .await?;
    Ok(views.to_string())
}

/// A plain Rocket app with the counter, configured by `figment`.
fn app(figment: Figment, latch: Latch) -> Rocket<Build> {
    rocket::custom(figment)
        .attach(latch)
        .mount("/", routes![index])
}

fn figment(database_url: &str) -> Figment {
    rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge(("latch.database_url", database_url))
}

async fn count_rows(database_url: &str) -> i64 {
    let pool = sqlx::SqlitePool::connect(database_url)
        .await
        .expect("connect");
    sqlx::query_scalar("select count(*) from sessions")
        .fetch_one(&pool)
        .await
        .expect("count")
}

/// Three visits from one browser count three, in one row; the page is not cacheable.
async fn assert_counts(client: &Client, database_url: &str) {
    for expected in ["1", "2", "3"] {
        let response = client.get("/").dispatch().await;
        assert_eq!(response.status(), Status::Ok);
        assert_eq!(
            response.headers().get_one("Cache-Control"),
            Some("no-store")
        );
        assert_eq!(response.into_string().await.as_deref(), Some(expected));
    }
    assert_eq!(count_rows(database_url).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fairing_alone_gives_an_app_sessions() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    // A folder that does not exist yet: the fairing creates it with the file.
    let url = format!("sqlite://{}", dir.path().join("data/app.db").display());

    let client = Client::tracked(app(figment(&url), Latch::fairing()))
        .await
        .expect("the app launches");

    assert_counts(&client, &url).await;
    assert!(client.rocket().state::<latch::Database>().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_store_takes_a_store_on_the_apps_own_pool() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("own.db").display());
    let pool = sqlx::SqlitePool::connect(&url)
        .await
        .expect("the app's pool");
    let store = SqliteStore::open(pool)
        .await
        .expect("the store opens")
        .batched()
        .cached(100);
    // latch's database keys name nothing usable, and one is out of range: with a store of the
    // app's own, they are not read.
    let figment =
        figment("postgres://nobody@127.0.0.1:1/none").merge(("latch.database_timeout", 0));

    let client = Client::tracked(app(figment, Latch::with_store(store)))
        .await
        .expect("the app launches");

    assert_counts(&client, &url).await;
    assert!(client.rocket().state::<latch::Database>().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_setting_stops_the_launch() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let url = format!("sqlite://{}", dir.path().join("app.db").display());
    let figment = figment(&url).merge(("latch.idle_timeout", 0));

    let Err(error) = Client::tracked(app(figment, Latch::fairing())).await else {
        panic!("launched with idle_timeout = 0");
    };

    // Reading the kind marks the error handled (Rocket panics on dropping an unread one).
    assert!(
        matches!(error.kind(), rocket::error::ErrorKind::FailedFairings(_)),
        "{error}"
    );
    assert!(
        !dir.path().join("app.db").exists(),
        "opened the database anyway"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apps_own_database_url_and_session_table_are_left_alone() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let url = format!("sqlite://{}", dir.path().join("sessions.db").display());
    let toml = format!(
        r#"
        [default]
        database_url = "mysql://shop@localhost/shop"
        database_timeout = 0

        [default.session]
        backend = "redis"
        idle_timeout = "forever"

        [default.latch]
        database_url = "{url}"
        idle_timeout = 600
        "#
    );
    let figment = rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge(Toml::string(&toml).nested());

    let client = Client::tracked(app(figment, Latch::fairing()))
        .await
        .expect("the app launches beside its own settings");

    assert_counts(&client, &url).await;
    let manager = client
        .rocket()
        .state::<latch::SessionManager>()
        .expect("managed");
    assert_eq!(manager.config().idle_timeout, 600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_config_takes_a_configuration_the_app_built() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let url = format!("sqlite://{}", dir.path().join("built.db").display());
    let mut config = latch::Config::default();
    config.database.url.clone_from(&url);
    config.session.idle_timeout = 120;
    // The figment's own `latch` table is not read.
    let figment = figment("mysql://not-read").merge(("latch.idle_timeout", 0));

    let client = Client::tracked(app(figment, Latch::with_config(config.clone())))
        .await
        .expect("the app launches");

    assert_counts(&client, &url).await;
    let manager = client
        .rocket()
        .state::<latch::SessionManager>()
        .expect("managed");
    assert_eq!(manager.config().idle_timeout, 120);

    // A configuration built out of range is checked as one read from the figment.
    config.session.idle_timeout = 0;
    let Err(error) =
        Client::tracked(app(rocket::Config::figment(), Latch::with_config(config))).await
    else {
        panic!("launched with idle_timeout = 0");
    };
    assert!(matches!(
        error.kind(),
        rocket::error::ErrorKind::FailedFairings(_)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apps_own_sessions_table_is_refused_by_name_and_another_name_works_beside_it() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("shop.db").display());
    let pool = sqlx::SqlitePool::connect(&url)
        .await
        .expect("the app's pool");
    sqlx::query("create table sessions (id integer primary key, note text not null)")
        .execute(&pool)
        .await
        .expect("the app's own table");
    sqlx::query("insert into sessions (note) values ('the app''s')")
        .execute(&pool)
        .await
        .expect("a row of the app's");

    let mut config = latch::Config::default();
    config.database.url.clone_from(&url);
    let Err(error) = latch::open(config.clone()).await else {
        panic!("latch took over the app's `sessions` table");
    };
    assert!(
        matches!(error, latch::SetupError::TableTaken(ref table) if table == "sessions"),
        "{error}"
    );
    assert!(error.to_string().contains("`table` setting"), "{error}");
    let Err(launch) = Client::tracked(app(figment(&url), Latch::fairing())).await else {
        panic!("launched on the app's `sessions` table");
    };
    assert!(matches!(
        launch.kind(),
        rocket::error::ErrorKind::FailedFairings(_)
    ));

    let client = Client::tracked(app(
        figment(&url).merge(("latch.table", "latch_sessions")),
        Latch::fairing(),
    ))
    .await
    .expect("the app launches with latch's table named apart");
    for expected in ["1", "2"] {
        let response = client.get("/").dispatch().await;
        assert_eq!(response.into_string().await.as_deref(), Some(expected));
    }
    let latch_rows: i64 = sqlx::query_scalar("select count(*) from latch_sessions")
        .fetch_one(&pool)
        .await
        .expect("latch's table");
    let app_rows: Vec<String> = sqlx::query_scalar("select note from sessions")
        .fetch_all(&pool)
        .await
        .expect("the app's table, as it was");
    assert_eq!(latch_rows, 1);
    assert_eq!(app_rows, ["the app's"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_name_that_would_need_quoting_stops_the_launch_naming_the_key() {
    let figment = Figment::new().merge(("latch.table", "sessions; drop table users"));
    let error = latch::Config::from_figment(&figment).expect_err("refused");
    assert_eq!(error.key, "latch.table", "{error}");
    let figment = Figment::new()
        .merge(("latch.database_url", "sqlite::memory:"))
        .merge(("latch.schema", "auth"));
    let error = latch::Config::from_figment(&figment).expect_err("no schemas in SQLite");
    assert_eq!(error.key, "latch.schema", "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_memory_sessions_and_the_test_helper_read_what_a_browser_holds() {
    // The figment's other latch settings still count; its database_url does not.
    let figment = rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge(("latch.database_url", "postgres://nobody@127.0.0.1:1/none"))
        .merge(("latch.idle_timeout", 90));
    let client = Client::tracked(app(figment, Latch::in_memory()))
        .await
        .expect("the app launches on an in-memory database");

    assert_eq!(latch::testing::session(&client).await.expect("reads"), None);
    for expected in ["1", "2", "3"] {
        let response = client.get("/").dispatch().await;
        assert_eq!(response.into_string().await.as_deref(), Some(expected));
    }

    let session = latch::testing::session(&client)
        .await
        .expect("reads")
        .expect("the browser has a session");
    assert_eq!(session.get(&VIEWS).expect("a number"), Some(3));
    assert_eq!(session.user, None);
    let manager = client
        .rocket()
        .state::<latch::SessionManager>()
        .expect("managed");
    assert_eq!(manager.config().idle_timeout, 90);

    // Another browser's jar names no session.
    let stranger = Client::untracked(app(
        rocket::Config::figment().merge(("log_level", "off")),
        Latch::in_memory(),
    ))
    .await
    .expect("launches");
    assert_eq!(
        latch::testing::session(&stranger).await.expect("reads"),
        None
    );
}
