//! Attacks on the walkthrough: forged and cross-site writes, login races, caching proxies,
//! oversize and invisible input, and old keys.

use std::time::Duration;

use futures::future::join_all;
use latch::{Key, Session, SessionError};
use rocket::http::{ContentType, Cookie, Header, Method, Status};
use rocket::{State, get, routes};
use serde_json::json;

use crate::helpers::{
    Backend, COOKIE, CSRF_COOKIE, TestApp, assert_status, backend_tests, csrf_token_in, read,
    set_cookies,
};

backend_tests!(
    a_form_post_without_this_browsers_token_is_refused_and_changes_nothing,
    logout_is_a_post_and_a_get_only_asks,
    every_post_route_refuses_cross_site_requests,
    the_json_api_takes_only_json,
    session_responses_are_not_cached,
    a_login_never_shows_the_name_under_the_old_id,
    names_with_invisible_format_characters_are_refused,
    oversize_bodies_get_413_and_change_nothing,
    data_past_the_cap_is_refused_and_nothing_is_stored,
    a_write_racing_a_logout_is_a_conflict_and_stores_nothing,
    a_cookie_sealed_with_a_previous_key_is_accepted_and_resealed,
);

async fn a_form_post_without_this_browsers_token_is_refused_and_changes_nothing(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.get("/user/Ada").await;
    let other_browser = app.second_instance().await;
    let other_page = other_browser.get("/login").dispatch().await;
    let other_token = csrf_token_in(&other_page.into_string().await.unwrap_or_default());
    let rows_before = app.rows().await;

    let missing = read(app.post_form("/login", "username=Mallory").await).await;
    let wrong = read(
        app.post_form("/login", "csrf_token=forged&username=Mallory")
            .await,
    )
    .await;
    let others = read(
        app.post_form(
            "/login",
            &format!("csrf_token={other_token}&username=Mallory"),
        )
        .await,
    )
    .await;
    let logout = read(app.post_form("/logout", "csrf_token=forged").await).await;

    for page in [&missing, &wrong, &others, &logout] {
        assert_status(page, Status::Forbidden);
    }
    assert_eq!(app.rows().await, rows_before, "nothing changed");
    // This browser has a session: its token is derived from the session, no cookie needed.
    let honest = app.post_form_with_token("/login", "username=Grace").await;
    assert_eq!(honest.status(), Status::SeeOther);
    assert!(app.raw_csrf_cookie().is_none());
}

async fn logout_is_a_post_and_a_get_only_asks(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.get("/user/Ada").await;

    let confirm = read(app.get("/logout").await).await;
    // Rocket's `_method` override on a tokenless form post: no logout either way.
    let overridden = read(app.post_form("/logout", "_method=get").await).await;
    let still_there = app.current_row().await;
    let logout = read(app.logout().await).await;

    assert_status(&confirm, Status::Ok);
    assert!(confirm.1.contains(r#"<form"#) && confirm.1.contains(r#"action="/logout""#));
    assert!(!overridden.1.contains("logged out!"), "{}", overridden.1);
    assert!(
        still_there.is_some(),
        "neither a GET nor _method=get logs out"
    );
    assert_status(&logout, Status::Ok);
    assert!(logout.1.contains("logged out!"));
    assert!(app.rows().await.is_empty());
}

async fn every_post_route_refuses_cross_site_requests(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let token = app.csrf_token().await;
    let post_routes: Vec<String> = app
        .client
        .rocket()
        .routes()
        .filter(|route| route.method == Method::Post)
        .map(|route| route.uri.to_string())
        .collect();
    assert!(post_routes.len() >= 3, "{post_routes:?}");

    for uri in &post_routes {
        for header in [
            Header::new("Origin", "http://evil.example"),
            Header::new("Origin", "null"),
            Header::new("Sec-Fetch-Site", "cross-site"),
        ] {
            let response = app
                .client
                .post(uri.clone())
                .header(header.clone())
                .header(ContentType::Form)
                .body(format!("csrf_token={token}&username=Mallory"))
                .dispatch()
                .await;
            assert_eq!(response.status(), Status::Forbidden, "{uri} with {header}");
        }
    }
    assert!(app.rows().await.is_empty(), "nothing was written");
    // Same-origin requests pass, with or without the headers.
    let same_origin = app
        .client
        .post("/login")
        .header(Header::new("Origin", "http://localhost:8000"))
        .header(Header::new("Host", "localhost:8000"))
        .header(Header::new("Sec-Fetch-Site", "same-origin"))
        .header(ContentType::Form)
        .body(format!("csrf_token={token}&username=Grace"))
        .dispatch()
        .await;
    assert_eq!(same_origin.status(), Status::SeeOther);
    let api = app
        .client
        .post("/name")
        .header(Header::new("Sec-Fetch-Site", "cross-site"))
        .header(ContentType::JSON)
        .body(r#"{"name":"Mallory"}"#)
        .dispatch()
        .await;
    assert_eq!(api.status(), Status::Forbidden);
    let body: serde_json::Value =
        serde_json::from_str(&api.into_string().await.unwrap_or_default()).expect("JSON");
    assert!(body["error"].is_string(), "{body}");
}

async fn the_json_api_takes_only_json(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let body = r#"{"name":"Mallory"}"#;

    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        None,
    ] {
        let mut request = app.client.post("/name").body(body);
        if let Some(content_type) = content_type {
            request = request.header(Header::new("Content-Type", content_type));
        }
        let (status, text) = read(request.dispatch().await).await;
        assert_eq!(status, Status::UnsupportedMediaType, "{content_type:?}");
        let error: serde_json::Value = serde_json::from_str(&text).expect("a JSON error");
        assert!(
            error["error"].as_str().is_some_and(|e| e.contains("JSON")),
            "{error}"
        );
    }
    assert!(app.rows().await.is_empty());

    let (status, text) = read(app.post_json("/name", r#"{"name": 5}"#).await).await;
    assert_eq!(status, Status::BadRequest);
    assert!(
        !text.contains("invalid type"),
        "no parser internals: {text}"
    );
    assert!(!text.contains("SetName"), "no type names: {text}");
}

async fn session_responses_are_not_cached(backend: Backend) {
    // A touch on every read after the first second: the only change some responses make.
    let Some(app) = TestApp::spawn_with(backend, &[("session.idle_timeout", json!(2))]).await
    else {
        return;
    };
    app.get("/user/Ada").await;
    tokio::time::sleep(Duration::from_millis(600)).await;

    for uri in ["/", "/user", "/name", "/login", "/logout", "/user/Grace"] {
        let response = app.get(uri).await;
        let headers = response.headers();
        assert_eq!(headers.get_one("Cache-Control"), Some("no-store"), "{uri}");
        assert!(
            headers
                .get("Vary")
                .any(|vary| vary.to_ascii_lowercase().contains("cookie")),
            "{uri}"
        );
        let csp = headers
            .get_one("Content-Security-Policy")
            .unwrap_or_default();
        assert!(
            csp.contains("default-src 'none'") && !csp.contains("unsafe-inline"),
            "{uri}: {csp}"
        );
        assert_eq!(
            headers.get_one("Referrer-Policy"),
            Some("same-origin"),
            "{uri}"
        );
        assert_eq!(
            headers.get_one("X-Content-Type-Options"),
            Some("nosniff"),
            "{uri}"
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{uri}: {csp}");
    }
    let touched = app.get("/user").await;
    assert_eq!(touched.headers().get_one("Cache-Control"), Some("no-store"));
    let logout = app.logout().await;
    assert_eq!(logout.headers().get_one("Cache-Control"), Some("no-store"));
    // The stylesheet is the same for everyone: cacheable.
    let css = app.get("/static/style.css").await;
    assert_ne!(css.headers().get_one("Cache-Control"), Some("no-store"));
}

async fn a_login_never_shows_the_name_under_the_old_id(backend: Backend) {
    // Readers on this instance and on a second one (on SQLite, instances sharing a file run
    // without the cache).
    let settings = match backend {
        Backend::Sqlite => vec![("session.cache_capacity", json!(0))],
        Backend::Postgres => vec![],
    };
    let Some(app) = TestApp::spawn_with(backend, &settings).await else {
        return;
    };
    let other = app.second_instance().await;
    for trial in 0..5 {
        app.get("/").await;
        let old_cookie = app.raw_cookie().expect("a session before login");
        let old_id = app.session_id().expect("id");
        let token = app.csrf_token().await;
        let name = format!("Grace{trial}");

        let here =
            (0..8).map(|_| async { read(app.get_with_cookie("/user", &old_cookie).await).await });
        let there = (0..8).map(|_| async {
            let response = other
                .get("/user")
                .cookie(Cookie::new(COOKIE, old_cookie.clone()))
                .dispatch()
                .await;
            read(response).await
        });
        let body = format!("csrf_token={token}&username={name}");
        let login = async {
            let response = app.post_form("/login", &body).await;
            let new_cookie = response
                .cookies()
                .get(COOKIE)
                .map(|cookie| cookie.value().to_owned());
            (response.status(), new_cookie)
        };
        let (seen_here, seen_there, (status, new_cookie)) =
            futures::join!(join_all(here), join_all(there), login);

        assert_eq!(status, Status::SeeOther);
        for (status, body) in seen_here.iter().chain(&seen_there) {
            assert_eq!(*status, Status::Ok);
            assert!(
                !body.contains(&name),
                "the old ID showed the new name: {body}"
            );
        }
        assert!(app.row_for(&old_id).await.is_none(), "the old ID is dead");
        // The readers' answers remove the dead cookie from the client's jar while the login's
        // answer sets the new one: present the new one explicitly.
        let new_cookie = new_cookie.expect("the login sets a new cookie");
        let greeting = read(app.get_with_cookie("/", &new_cookie).await).await;
        assert!(
            greeting.1.contains(&format!("Hello {name}")),
            "{}",
            greeting.1
        );
        let after = read(app.get_with_cookie("/user", &old_cookie).await).await;
        assert!(after.1.contains("user logged out!"));
        app.logout_with_cookie(&new_cookie).await;
    }
}

async fn names_with_invisible_format_characters_are_refused(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    for (encoded, raw) in [
        ("evil%E2%80%AEtxt", "evil\u{202e}txt"),
        ("zero%E2%80%8Bwidth", "zero\u{200b}width"),
        ("%EF%BB%BFbom", "\u{feff}bom"),
    ] {
        let page = read(app.get(&format!("/user/{encoded}")).await).await;
        assert_status(&page, Status::UnprocessableEntity);
        assert!(page.1.contains("invisible formatting"), "{}", page.1);
        let api = read(
            app.post_json("/name", &json!({ "name": raw }).to_string())
                .await,
        )
        .await;
        assert_status(&api, Status::UnprocessableEntity);
        let login = read(
            app.post_form_with_token("/login", &format!("username={encoded}"))
                .await,
        )
        .await;
        assert_status(&login, Status::UnprocessableEntity);
    }
    assert!(app.rows().await.is_empty());
}

async fn oversize_bodies_get_413_and_change_nothing(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let huge = "x".repeat(100 * 1024);

    let login = read(
        app.post_form_with_token("/login", &format!("username={huge}"))
            .await,
    )
    .await;
    let logout = read(
        app.post_form_with_token("/logout", &format!("pad={huge}"))
            .await,
    )
    .await;
    // The JSON limit is 1 MiB.
    let api_huge = "x".repeat(2 * 1024 * 1024);
    let api = read(
        app.post_json("/name", &json!({ "name": api_huge }).to_string())
            .await,
    )
    .await;

    assert_status(&login, Status::PayloadTooLarge);
    assert!(login.1.contains("<html"), "an HTML page for a form");
    assert_status(&logout, Status::PayloadTooLarge);
    assert_status(&api, Status::PayloadTooLarge);
    assert!(api.1.starts_with('{'), "JSON for the API: {}", api.1);
    assert!(app.rows().await.is_empty());
}

const BLOB: Key<String> = Key::new("blob");

#[get("/blob/<size>")]
async fn store_blob(size: usize, session: Session<'_>) -> Result<&'static str, Status> {
    match session.insert(&BLOB, &"x".repeat(size)).await {
        Ok(()) => Ok("stored"),
        Err(error) => Err(error.status()),
    }
}

async fn data_past_the_cap_is_refused_and_nothing_is_stored(backend: Backend) {
    let Some(app) = TestApp::spawn_mounting(backend, routes![store_blob]).await else {
        return;
    };
    // The default cap is 16 KiB of JSON.
    let small = read(app.get("/t/blob/100").await).await;
    let before = app.current_row().await.expect("stored");
    let large = read(app.get("/t/blob/20000").await).await;

    assert_status(&small, Status::Ok);
    assert_status(&large, Status::PayloadTooLarge);
    assert_eq!(app.rows().await, vec![before], "nothing else was stored");
}

#[get("/race")]
async fn write_after_a_concurrent_logout(
    session: Session<'_>,
    sessions: &State<latch::SessionManager>,
    cookies: &rocket::http::CookieJar<'_>,
) -> Result<&'static str, Status> {
    // Another request logs the session out after this one loaded it ...
    let id = cookies
        .get_private(COOKIE)
        .and_then(|cookie| latch::SessionId::parse(cookie.value()))
        .ok_or(Status::BadRequest)?;
    sessions
        .store()
        .delete(&id.hash())
        .await
        .map_err(|e| SessionError::from(e).status())?;
    // ... and then this one writes.
    match session.insert(&BLOB, &"late".to_owned()).await {
        Ok(()) => Ok("stored"),
        Err(SessionError::Ended) => Err(Status::Conflict),
        Err(error) => Err(error.status()),
    }
}

async fn a_write_racing_a_logout_is_a_conflict_and_stores_nothing(backend: Backend) {
    let Some(app) =
        TestApp::spawn_mounting(backend, routes![write_after_a_concurrent_logout]).await
    else {
        return;
    };
    app.get("/").await;
    // Warm the cache on Postgres too, so the guard's copy is an unconfirmed cached one.
    app.get("/").await;

    let raced = read(app.get("/t/race").await).await;

    assert_status(&raced, Status::Conflict);
    assert!(
        app.rows().await.is_empty(),
        "the write did not bring it back"
    );
}

async fn a_cookie_sealed_with_a_previous_key_is_accepted_and_resealed(backend: Backend) {
    const NEW_KEY: &str = "3Q2+7w/yWQXQ0ykFvM0gdUE31kLwJ9Nc8sFD0ObXKRI=";
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    // A login form seen before there is a session: its token lives in the CSRF cookie.
    let old_token = app.csrf_token().await;
    let old_csrf_cookie = app
        .raw_csrf_cookie()
        .expect("a CSRF cookie sealed with the old key");
    app.get("/user/Ada").await;
    let old_cookie = app.raw_cookie().expect("a cookie sealed with the old key");

    // Rotate: the new key seals, the old one only opens.
    let rotated = app
        .restart_with(&[
            ("secret_key", json!(NEW_KEY)),
            (
                "previous_secret_keys",
                json!([crate::helpers::TEST_SECRET_KEY]),
            ),
        ])
        .await;
    let response = rotated.get_with_cookie("/user", &old_cookie).await;
    let resealed = set_cookies(&response);
    let page = read(response).await;

    assert!(page.1.contains("<h1>Ada</h1>"), "{}", page.1);
    let new_cookie = resealed
        .iter()
        .find_map(|c| c.strip_prefix(&format!("{COOKIE}=")))
        .and_then(|c| c.split(';').next())
        .map(str::to_owned)
        .expect("the response reseals the cookie");
    assert_ne!(new_cookie, old_cookie);
    // The CSRF cookie too: same token, resealed.
    let fresh_browser = rotated.second_instance().await;
    let form = fresh_browser
        .get("/login")
        .cookie(Cookie::new(CSRF_COOKIE, old_csrf_cookie))
        .dispatch()
        .await;
    let resealed_csrf = form
        .headers()
        .get("Set-Cookie")
        .any(|c| c.starts_with(&format!("{CSRF_COOKIE}=")));
    let form = read(form).await;
    assert!(
        resealed_csrf,
        "the CSRF cookie is resealed with the new key"
    );
    assert_eq!(
        csrf_token_in(&form.1),
        old_token,
        "the token survives the rotation"
    );

    // Drop the old key: its cookies are no session, and are removed.
    let dropped = rotated
        .restart_with(&[
            ("secret_key", json!(NEW_KEY)),
            ("previous_secret_keys", json!([])),
        ])
        .await;
    let with_old = dropped.get_with_cookie("/user", &old_cookie).await;
    let removal = set_cookies(&with_old);
    let old_page = read(with_old).await;
    let new_page = read(
        dropped
            .client
            .get("/user")
            .cookie(Cookie::new(COOKIE, decode_cookie(&new_cookie)))
            .dispatch()
            .await,
    )
    .await;

    assert!(old_page.1.contains("user logged out!"));
    assert!(
        removal
            .iter()
            .any(|c| c.starts_with(&format!("{COOKIE}=;"))),
        "{removal:?}"
    );
    assert!(
        new_page.1.contains("<h1>Ada</h1>"),
        "resealed with the new key"
    );
}

/// A `Set-Cookie` value is percent-encoded; the local client wants it decoded.
fn decode_cookie(value: &str) -> String {
    percent_encoding::percent_decode_str(value)
        .decode_utf8_lossy()
        .into_owned()
}
