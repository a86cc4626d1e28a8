//! Parallel requests on one session: no lost updates, and no resurrection after logout.

use futures::future::join_all;
use rocket::http::Status;
use serde_json::json;

use crate::helpers::{Backend, TestApp, backend_tests, read};

backend_tests!(
    twenty_four_parallel_counter_hits_all_count,
    parallel_writes_to_different_keys_all_land,
    a_request_finishing_after_logout_does_not_bring_the_session_back,
);

async fn twenty_four_parallel_counter_hits_all_count(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.get("/").await;
    let cookie = app.raw_cookie().expect("cookie");

    let hits = (0..24).map(|_| async { read(app.get_with_cookie("/", &cookie).await).await });
    let pages = join_all(hits).await;

    assert!(
        pages.iter().all(|(status, _)| *status == Status::Ok),
        "{pages:?}"
    );
    let row = app.current_row().await.expect("stored");
    assert_eq!(row.data, json!({ "page_views": 25 }));
    let last = read(app.get("/").await).await;
    assert!(last.1.contains("You visited this page 26 times"));
}

async fn parallel_writes_to_different_keys_all_land(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.get("/").await;
    let cookie = app.raw_cookie().expect("cookie");

    let counter = (0..12).map(|_| async { read(app.get_with_cookie("/", &cookie).await).await });
    let names = (0..12).map(|i| {
        let cookie = cookie.clone();
        let app = &app;
        async move { read(app.get_with_cookie(&format!("/user/n{i}"), &cookie).await).await }
    });
    let (counted, named) = futures::join!(join_all(counter), join_all(names));

    assert!(
        counted
            .iter()
            .chain(&named)
            .all(|(status, _)| *status == Status::Ok)
    );
    let row = app.current_row().await.expect("stored");
    assert_eq!(
        row.data["page_views"],
        json!(13),
        "no counter update was lost"
    );
    assert!(
        row.data["name"]
            .as_str()
            .is_some_and(|n| n.starts_with('n'))
    );
}

async fn a_request_finishing_after_logout_does_not_bring_the_session_back(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };

    for _ in 0..5 {
        app.get("/").await;
        let id = app.session_id().expect("id");
        let cookie = app.raw_cookie().expect("cookie");

        let hits = (0..12).map(|_| async { read(app.get_with_cookie("/", &cookie).await).await });
        let logout = async { read(app.get_with_cookie("/logout", &cookie).await).await };
        let (pages, logged_out) = futures::join!(join_all(hits), logout);

        assert_eq!(logged_out.0, Status::Ok);
        for (status, body) in &pages {
            assert!(
                *status == Status::Ok || *status == Status::Conflict,
                "{status}: {body}"
            );
        }
        assert!(
            app.row_for(&id).await.is_none(),
            "the destroyed session stays gone"
        );
        let after = read(app.get_with_cookie("/user", &cookie).await).await;
        assert!(after.1.contains("user logged out!"));
        // Start the next round as a fresh browser.
        app.get("/logout").await;
    }
}
