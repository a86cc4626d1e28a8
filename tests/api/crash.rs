//! `kill -9` right after a write was answered: once the app said "saved", a crash must not lose
//! it. The real binary, real HTTP, SIGKILL, a restart on the same database.

use serde_json::{Value, json};

use crate::helpers::{Backend, COOKIE, TestDb, backend_tests};
use crate::server::{Server, http_client, session_cookie, session_id_in};

backend_tests!(a_write_answered_before_kill_9_survives_the_restart);

async fn a_write_answered_before_kill_9_survives_the_restart(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let mut server = Server::start(db.url(), &[]);
    let http = http_client();

    // A name from the page, killed the moment the answer is in.
    let set = http
        .get(server.url("/user/Ada"))
        .send()
        .await
        .expect("GET /user/Ada");
    server.kill();
    assert_eq!(set.status(), 200);
    let cookie = session_cookie(&set).expect("the first write sets the session cookie");
    server.restart();
    let page = get_text(&http, &server.url("/user"), &cookie).await;
    assert!(page.contains("<h1>Ada</h1>"), "{page}");

    // A name from the JSON API, on the same session.
    let posted = http
        .post(server.url("/name"))
        .header(reqwest::header::COOKIE, format!("{COOKIE}={cookie}"))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(json!({ "name": "Grace" }).to_string())
        .send()
        .await
        .expect("POST /name");
    server.kill();
    assert_eq!(posted.status(), 200);
    server.restart();
    let api = get_text(&http, &server.url("/name"), &cookie).await;
    assert_eq!(
        serde_json::from_str::<Value>(&api).expect("JSON"),
        json!({ "name": "Grace" })
    );

    // The counter: the visit counted before the kill is remembered after it.
    let first = get_text(&http, &server.url("/"), &cookie).await;
    server.kill();
    assert!(first.contains("for the first time"), "{first}");
    server.restart();
    let second = get_text(&http, &server.url("/"), &cookie).await;
    assert!(second.contains("You visited this page 2 times"), "{second}");

    // And the row itself, read from the database with the app stopped.
    server.kill();
    let id = session_id_in(&cookie).expect("the cookie opens with the test key");
    let rows = db.rows().await;
    assert_eq!(rows.len(), 1, "one session, one row");
    assert_eq!(rows[0].id_hash, id.hash().as_bytes());
    assert_eq!(rows[0].data, json!({ "name": "Grace", "page_views": 2 }));
}

/// A GET presenting `cookie`, which must answer 200; its body.
async fn get_text(http: &reqwest::Client, url: &str, cookie: &str) -> String {
    let response = http
        .get(url)
        .header(reqwest::header::COOKIE, format!("{COOKIE}={cookie}"))
        .send()
        .await
        .unwrap_or_else(|error| panic!("GET {url}: {error}"));
    let status = response.status();
    let body = response.text().await.expect("body");
    assert_eq!(status, 200, "GET {url}: {body}");
    body
}
