//! Idle and absolute timeouts, and the touch throttle that keeps reads from becoming writes.

use serde_json::json;

use crate::helpers::{Backend, TestApp, backend_tests, read, set_cookies};

backend_tests!(
    an_idle_session_expires,
    activity_keeps_a_session_alive_past_the_idle_timeout,
    the_absolute_timeout_ends_even_an_active_session,
    reads_inside_the_touch_interval_write_nothing,
    the_first_read_after_the_touch_interval_extends_the_deadline,
    a_write_to_an_expired_session_starts_a_new_one,
);

/// Moves the app's clock forward: what waiting would do, without the wait.
fn pass_ms(app: &TestApp, ms: i64) {
    app.clock.advance(latch::time::Duration::milliseconds(ms));
}

async fn an_idle_session_expires(backend: Backend) {
    let settings = [
        ("session.idle_timeout", json!(1)),
        ("session.touch_interval", json!(0)),
    ];
    let Some(app) = TestApp::spawn_with(backend, &settings).await else {
        return;
    };
    app.get("/user/Ada").await;
    assert!(
        read(app.get("/user").await)
            .await
            .1
            .contains("<h1>Ada</h1>")
    );

    pass_ms(&app, 1300);
    let response = app.get("/user").await;
    let cookies = set_cookies(&response);
    let page = read(response).await;

    assert!(page.1.contains("user logged out!"), "{}", page.1);
    assert!(
        cookies.iter().any(|c| c.contains("Max-Age=0")),
        "stale cookie removed: {cookies:?}, {:?}",
        page.0
    );
}

async fn activity_keeps_a_session_alive_past_the_idle_timeout(backend: Backend) {
    let settings = [
        ("session.idle_timeout", json!(2)),
        ("session.touch_interval", json!(0)),
    ];
    let Some(app) = TestApp::spawn_with(backend, &settings).await else {
        return;
    };
    app.get("/user/Ada").await;

    for _ in 0..3 {
        pass_ms(&app, 1100);
        let page = read(app.get("/user").await).await;
        assert!(
            page.1.contains("<h1>Ada</h1>"),
            "alive after 1.1 s of idleness"
        );
    }
}

async fn the_absolute_timeout_ends_even_an_active_session(backend: Backend) {
    let settings = [
        ("session.idle_timeout", json!(60)),
        ("session.absolute_timeout", json!(2)),
        ("session.touch_interval", json!(0)),
    ];
    let Some(app) = TestApp::spawn_with(backend, &settings).await else {
        return;
    };
    app.get("/user/Ada").await;
    let row = app.current_row().await.expect("stored");
    assert!(
        row.expires_at <= row.created_at + 2000,
        "capped by the absolute timeout"
    );

    pass_ms(&app, 1000);
    assert!(
        read(app.get("/user").await)
            .await
            .1
            .contains("<h1>Ada</h1>")
    );
    pass_ms(&app, 1200);
    let page = read(app.get("/user").await).await;

    assert!(page.1.contains("user logged out!"));
}

async fn reads_inside_the_touch_interval_write_nothing(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.get("/user/Ada").await;
    let before = app.current_row().await.expect("stored");

    for _ in 0..5 {
        let response = app.get("/user").await;
        assert!(set_cookies(&response).is_empty(), "a read sends no cookie");
        read(response).await;
    }

    let after = app.current_row().await.expect("stored");
    assert_eq!(after, before, "the row is byte-for-byte unchanged");
}

async fn the_first_read_after_the_touch_interval_extends_the_deadline(backend: Backend) {
    let settings = [
        ("session.idle_timeout", json!(30)),
        ("session.touch_interval", json!(1)),
    ];
    let Some(app) = TestApp::spawn_with(backend, &settings).await else {
        return;
    };
    app.get("/user/Ada").await;
    let before = app.current_row().await.expect("stored");

    pass_ms(&app, 1100);
    let response = app.get("/user").await;
    let cookies = set_cookies(&response);
    read(response).await;
    let touched = app.current_row().await.expect("stored");
    let again = app.get("/user").await;
    let cookies_again = set_cookies(&again);
    read(again).await;

    assert!(
        touched.expires_at >= before.expires_at + 1000,
        "deadline moved forward"
    );
    assert_eq!(
        touched.version, before.version,
        "a touch is not a data write"
    );
    assert_eq!(touched.data, before.data);
    assert_eq!(cookies.len(), 1, "the cookie's Max-Age is refreshed");
    assert!(
        cookies_again.is_empty(),
        "and the next read inside the interval is free"
    );
    assert_eq!(
        app.current_row().await.expect("stored").expires_at,
        touched.expires_at
    );
}

async fn a_write_to_an_expired_session_starts_a_new_one(backend: Backend) {
    let settings = [
        ("session.idle_timeout", json!(1)),
        ("session.touch_interval", json!(0)),
    ];
    let Some(app) = TestApp::spawn_with(backend, &settings).await else {
        return;
    };
    app.get("/user/Ada").await;
    let old = app.session_id().expect("id");
    let old_row = app.row_for(&old).await.expect("stored");

    pass_ms(&app, 1300);
    app.get("/user/Bob").await;

    let new = app.session_id().expect("a new id");
    assert_ne!(new, old);
    assert_eq!(
        app.row_for(&old).await,
        Some(old_row),
        "the expired row is not revived"
    );
    assert_eq!(
        app.row_for(&new).await.expect("new").data,
        json!({ "name": "Bob" })
    );
}
