//! The `Session` guard's API beyond what the walkthrough pages use (`remove`, `clear`, typed
//! errors), through routes mounted on the real app for these tests only.

use latch::{Key, Session, SessionError};
use rocket::http::Status;
use rocket::{get, routes};
use serde_json::json;

use crate::helpers::{Backend, TestApp, assert_status, backend_tests, read};

const COLOR: Key<String> = Key::new("color");
const SIZE: Key<u32> = Key::new("size");
/// The same stored key, read as the wrong type.
const SIZE_AS_TEXT: Key<Vec<String>> = Key::new("size");

#[get("/set")]
async fn set(session: Session<'_>) -> Result<&'static str, Status> {
    session
        .insert(&COLOR, &"teal".to_owned())
        .await
        .map_err(|e| e.status())?;
    session.insert(&SIZE, &3).await.map_err(|e| e.status())?;
    Ok("set")
}

#[get("/remove-color")]
async fn remove_color(session: Session<'_>) -> Result<&'static str, Status> {
    session.remove(&COLOR).await.map_err(|e| e.status())?;
    Ok("removed")
}

#[get("/clear")]
async fn clear(session: Session<'_>) -> Result<&'static str, Status> {
    session.clear().await.map_err(|e| e.status())?;
    Ok("cleared")
}

#[get("/wrong-type")]
async fn wrong_type(session: Session<'_>) -> Result<&'static str, Status> {
    match session.get(&SIZE_AS_TEXT).await {
        Err(SessionError::Data { key, .. }) if key == "size" => Ok("data error"),
        _ => Err(Status::ImATeapot),
    }
}

#[get("/remove-nothing")]
async fn remove_nothing(session: Session<'_>) -> Result<String, Status> {
    session.remove(&COLOR).await.map_err(|e| e.status())?;
    let exists = session.exists().await.map_err(|e| e.status())?;
    Ok(format!("exists={exists}"))
}

async fn spawn(backend: Backend) -> Option<TestApp> {
    let routes = routes![set, remove_color, clear, wrong_type, remove_nothing];
    TestApp::spawn_mounting(backend, routes).await
}

backend_tests!(
    remove_deletes_one_key_and_keeps_the_rest,
    clear_empties_the_data_but_keeps_the_session,
    reading_a_key_as_the_wrong_type_is_a_data_error,
    removing_from_no_session_creates_nothing,
);

async fn remove_deletes_one_key_and_keeps_the_rest(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    app.get("/t/set").await;

    let removed = read(app.get("/t/remove-color").await).await;

    assert_status(&removed, Status::Ok);
    assert_eq!(
        app.current_row().await.expect("row").data,
        json!({ "size": 3 })
    );
}

async fn clear_empties_the_data_but_keeps_the_session(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    app.get("/t/set").await;
    let id = app.session_id().expect("id");

    let cleared = read(app.get("/t/clear").await).await;

    assert_status(&cleared, Status::Ok);
    assert_eq!(app.session_id(), Some(id), "same session");
    assert_eq!(app.current_row().await.expect("row").data, json!({}));
}

async fn reading_a_key_as_the_wrong_type_is_a_data_error(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    app.get("/t/set").await;

    let got = read(app.get("/t/wrong-type").await).await;

    assert_status(&got, Status::Ok);
    assert_eq!(got.1, "data error");
}

async fn removing_from_no_session_creates_nothing(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };

    let got = read(app.get("/t/remove-nothing").await).await;

    assert_eq!(got.1, "exists=false");
    assert!(app.rows().await.is_empty());
    assert!(app.raw_cookie().is_none());
}
