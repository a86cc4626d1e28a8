//! Launching: restarts keep sessions, instances share them, bad configuration stops the launch.

use rocket::http::Status;
use serde_json::json;

use crate::helpers::{
    Backend, COOKIE, TestApp, TestDb, assert_status, backend_tests, csrf_token_in, read,
    test_figment,
};

backend_tests!(
    sessions_survive_a_restart,
    two_instances_share_sessions_and_logout,
);

async fn sessions_survive_a_restart(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.get("/user/Ada").await;
    let cookie = app.raw_cookie().expect("cookie");

    let app = app.restart().await;
    let page = read(app.get_with_cookie("/user", &cookie).await).await;

    assert_status(&page, Status::Ok);
    assert!(page.1.contains("<h1>Ada</h1>"));
}

async fn two_instances_share_sessions_and_logout(backend: Backend) {
    // On SQLite each process caches sessions as their only writer, so instances sharing a
    // file must turn the cache off. On Postgres the caches hear each other's changes, and a
    // cache hit waits until every change committed before it has arrived: B's logout must be
    // seen by A's very next request (with A's copy of the session cached by then), and so must
    // B's change of name.
    let settings = match backend {
        Backend::Sqlite => vec![("session.cache_capacity", json!(0))],
        Backend::Postgres => vec![],
    };
    let Some(a) = TestApp::spawn_with(backend, &settings).await else {
        return;
    };
    let b = a.second_instance().await;
    a.get("/user/Ada").await;
    let cookie = a.raw_cookie().expect("cookie");
    let on_b = |uri: &'static str| {
        b.get(uri)
            .cookie(rocket::http::Cookie::new(COOKIE, cookie.clone()))
            .dispatch()
    };

    let seen_on_a_first = read(a.get_with_cookie("/user", &cookie).await).await;
    let seen_on_b = read(on_b("/user").await).await;
    read(on_b("/user/Grace").await).await;
    let renamed_on_a = read(a.get_with_cookie("/user", &cookie).await).await;
    // A writes from its cached copy without waiting for B's news: the version check must
    // catch B's count in between.
    let counted_on_a = read(a.get_with_cookie("/", &cookie).await).await;
    let counted_on_b = read(on_b("/").await).await;
    let counted_on_a_again = read(a.get_with_cookie("/", &cookie).await).await;
    // Logging out on B with the token B's own logout form carries.
    let token = csrf_token_in(&read(on_b("/logout").await).await.1);
    let logged_out_on_b = b
        .post("/logout")
        .cookie(rocket::http::Cookie::new(COOKIE, cookie.clone()))
        .header(rocket::http::ContentType::Form)
        .body(format!("csrf_token={token}"))
        .dispatch()
        .await;
    assert_status(&read(logged_out_on_b).await, Status::Ok);
    let seen_on_a = read(a.get_with_cookie("/user", &cookie).await).await;

    assert!(seen_on_a_first.1.contains("<h1>Ada</h1>"));
    assert!(seen_on_b.1.contains("<h1>Ada</h1>"));
    assert!(
        renamed_on_a.1.contains("<h1>Grace</h1>"),
        "B's change counts on A"
    );
    assert!(counted_on_a.1.contains("for the first time"));
    assert!(counted_on_b.1.contains("visited this page 2 times"));
    assert!(
        counted_on_a_again.1.contains("visited this page 3 times"),
        "A's count follows B's: {}",
        counted_on_a_again.1
    );
    assert!(
        seen_on_a.1.contains("user logged out!"),
        "logout on B ends it on A"
    );
    assert!(a.rows().await.is_empty());

    // A write on A after the logout on B starts a new session: the old one is neither revived
    // nor reported as ended mid-request (it ended before this request began).
    let after_logout = a.get_with_cookie("/user/Linus", &cookie).await;
    let fresh_cookie = a.raw_cookie().expect("a new cookie");
    assert_status(&read(after_logout).await, Status::Ok);
    assert_ne!(fresh_cookie, cookie);
    let rows = a.rows().await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].data["name"], "Linus");
}

/// Whether the app ignites with this configuration.
async fn ignites(figment: rocket::figment::Figment) -> bool {
    match latch_walkthrough::rocket(figment).ignite().await {
        Ok(_) => true,
        Err(error) => {
            // Looking at the kind marks the error handled (Rocket panics on unhandled ones).
            let _ = error.kind();
            false
        }
    }
}

#[tokio::test]
async fn the_release_profile_refuses_to_launch_without_a_secret_key() {
    let db = TestDb::create(Backend::Sqlite).await.expect("sqlite");
    let figment = rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge(("database_url", db.url()))
        .select("release");

    assert!(!ignites(figment.clone()).await);
    let with_key = figment.merge(("secret_key", crate::helpers::TEST_SECRET_KEY));
    assert!(ignites(with_key).await);
}

#[tokio::test]
async fn an_unsupported_database_url_stops_the_launch() {
    let figment = test_figment("mysql://localhost/latch");

    assert!(!ignites(figment).await);
}

#[tokio::test]
async fn inconsistent_session_settings_stop_the_launch() {
    let db = TestDb::create(Backend::Sqlite).await.expect("sqlite");
    let figment = test_figment(db.url())
        .merge(("session.idle_timeout", json!(60)))
        .merge(("session.touch_interval", json!(60)));

    assert!(!ignites(figment).await);
    let typo = test_figment(db.url()).merge(("session.idle_timout", json!(60)));
    assert!(!ignites(typo).await, "unknown session keys are refused");
}
