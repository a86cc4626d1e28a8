//! The JSON API at `/name`: read, set, and every way a body can be wrong.

use rocket::http::Status;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, assert_status, backend_tests, read, set_cookies};

backend_tests!(
    get_name_without_a_session_is_empty_and_creates_nothing,
    post_name_stores_and_echoes_the_name,
    bodies_that_are_not_an_object_with_a_string_name_get_400,
    an_invalid_name_gets_a_json_422,
    an_oversized_body_gets_a_json_413,
    errors_under_the_api_are_json,
);

fn json_body(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

async fn get_name_without_a_session_is_empty_and_creates_nothing(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };

    let response = app.get("/name").await;
    let cookies = set_cookies(&response);
    let got = read(response).await;

    assert_status(&got, Status::Ok);
    assert_eq!(json_body(&got.1), json!({ "name": "" }));
    assert!(cookies.is_empty(), "{cookies:?}");
    assert!(app.rows().await.is_empty());
}

async fn post_name_stores_and_echoes_the_name(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };

    let set = read(app.post_json("/name", r#"{"name": "Ada <3"}"#).await).await;
    let got = read(app.get("/name").await).await;

    assert_status(&set, Status::Ok);
    assert_eq!(json_body(&set.1), json!({ "name": "Ada <3" }));
    assert_eq!(json_body(&got.1), json!({ "name": "Ada <3" }));
    let row = app.current_row().await.expect("stored");
    assert_eq!(row.data, json!({ "name": "Ada <3" }));
}

async fn bodies_that_are_not_an_object_with_a_string_name_get_400(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.post_json("/name", r#"{"name": "kept"}"#).await;

    for body in [
        "",
        "not json",
        "[]",
        r#""Ada""#,
        "{}",
        r#"{"name": 5}"#,
        r#"{"name": null}"#,
        r#"{"name": ["Ada"]}"#,
        r#"{"nom": "Ada"}"#,
        r#"{"name": "Ada""#,
    ] {
        let got = read(app.post_json("/name", body).await).await;
        assert_status(&got, Status::BadRequest);
        let error = json_body(&got.1);
        assert!(
            error["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{body}: {error}"
        );
    }
    let not_utf8 = app
        .client
        .post("/name")
        .header(rocket::http::ContentType::JSON)
        .body([b'{', 0xff, 0xfe, b'}'])
        .dispatch()
        .await;
    let got = read(not_utf8).await;
    assert_status(&got, Status::BadRequest);

    let row = app.current_row().await.expect("still there");
    assert_eq!(row.data, json!({ "name": "kept" }));
    assert_eq!(row.version, 0, "nothing was written");
}

async fn an_invalid_name_gets_a_json_422(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };

    for (name, reason) in [
        (String::new(), "empty"),
        ("x".repeat(65), "longer than 64"),
        ("a\nb".to_owned(), "control characters"),
        ("bad\u{fffd}".to_owned(), "UTF-8"),
    ] {
        let body = json!({ "name": name }).to_string();
        let got = read(app.post_json("/name", &body).await).await;
        assert_status(&got, Status::UnprocessableEntity);
        let message = json_body(&got.1)["error"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(message.contains(reason), "{name:?}: {message}");
    }

    assert!(app.rows().await.is_empty());
    assert!(app.raw_cookie().is_none());
}

async fn an_oversized_body_gets_a_json_413(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let huge = json!({ "name": "x".repeat(2 * 1024 * 1024) }).to_string();

    let got = read(app.post_json("/name", &huge).await).await;

    assert_status(&got, Status::PayloadTooLarge);
    assert!(json_body(&got.1)["error"].is_string());
    assert!(app.rows().await.is_empty());
}

async fn errors_under_the_api_are_json(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };

    let missing = read(app.get("/name/nothing-here").await).await;
    let wrong_method = read(app.client.delete("/name").dispatch().await).await;

    assert_status(&missing, Status::NotFound);
    assert_eq!(
        json_body(&missing.1),
        json!({ "error": "There is nothing at this address." })
    );
    assert!(json_body(&wrong_method.1)["error"].is_string());
}
