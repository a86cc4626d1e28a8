//! The session cookie: attributes, encryption, hashed IDs at rest, lazy creation, and every kind
//! of bad cookie.

use latch::SessionId;
use rocket::http::{Cookie, Status};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::helpers::{Backend, COOKIE, TestApp, assert_status, backend_tests, read, set_cookies};

backend_tests!(
    the_cookie_is_http_only_lax_site_wide_and_lasts_the_idle_timeout,
    the_cookie_name_and_lifetime_follow_the_configuration,
    the_cookie_is_encrypted_and_the_table_holds_only_a_sha256_of_the_id,
    readers_get_no_cookie_and_no_row,
    garbage_and_tampered_cookies_are_no_session_and_are_removed,
    a_cookie_sealed_with_another_key_is_no_session,
    a_sealed_but_unknown_id_is_never_adopted,
    a_sealed_but_malformed_id_is_no_session,
    a_host_prefixed_cookie_is_secure_site_wide_and_has_no_domain,
);

async fn a_host_prefixed_cookie_is_secure_site_wide_and_has_no_domain(backend: Backend) {
    let settings = [
        ("session.cookie_name", json!("__Host-session")),
        ("session.cookie_secure", json!(true)),
    ];
    let Some(app) = TestApp::spawn_with(backend, &settings).await else {
        return;
    };

    let response = app.get("/user/Ada").await;
    let cookies = set_cookies(&response);
    let page = read(response).await;

    assert_status(&page, Status::Ok);
    let cookie = cookies
        .iter()
        .find(|c| c.starts_with("__Host-session="))
        .expect("the session cookie under its prefixed name");
    let cookie = Cookie::parse(cookie.clone()).expect("a valid Set-Cookie");
    assert_eq!(cookie.secure(), Some(true));
    assert_eq!(cookie.path(), Some("/"));
    assert_eq!(cookie.domain(), None);
    assert_eq!(app.rows().await.len(), 1);
}

async fn the_cookie_is_http_only_lax_site_wide_and_lasts_the_idle_timeout(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };

    let response = app.get("/user/Ada").await;
    let cookies = set_cookies(&response);

    assert_eq!(cookies.len(), 1, "{cookies:?}");
    let cookie = Cookie::parse(cookies[0].clone()).expect("a valid Set-Cookie");
    assert_eq!(cookie.name(), COOKIE);
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(cookie.same_site(), Some(rocket::http::SameSite::Lax));
    assert_eq!(cookie.path(), Some("/"));
    let max_age = cookie.max_age().expect("Max-Age").whole_seconds();
    assert!((3595..=3600).contains(&max_age), "{max_age}");
    assert_ne!(cookie.secure(), Some(true), "not Secure unless configured");
}

async fn the_cookie_name_and_lifetime_follow_the_configuration(backend: Backend) {
    let settings = [
        ("session.cookie_name", json!("sid")),
        ("session.idle_timeout", json!(120)),
        ("session.touch_interval", json!(10)),
        ("session.cookie_secure", json!(true)),
    ];
    let Some(app) = TestApp::spawn_with(backend, &settings).await else {
        return;
    };

    let response = app.get("/user/Ada").await;
    let cookies = set_cookies(&response);

    let cookie = Cookie::parse(cookies[0].clone()).expect("a valid Set-Cookie");
    assert_eq!(cookie.name(), "sid");
    let max_age = cookie.max_age().expect("Max-Age").whole_seconds();
    assert!((115..=120).contains(&max_age), "{max_age}");
    assert_eq!(cookie.secure(), Some(true));
}

async fn the_cookie_is_encrypted_and_the_table_holds_only_a_sha256_of_the_id(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.get("/user/Ada").await;

    let raw = app.raw_cookie().expect("cookie");
    let id = app.session_id().expect("decryptable with the app's key");
    let rows = app.rows().await;

    let encoded = id.encode();
    assert!(
        !raw.contains(&encoded),
        "the cookie does not show the ID in clear"
    );
    assert_eq!(encoded.len(), 43, "256 bits, URL-safe base64");
    assert_eq!(rows.len(), 1);
    let raw_id = base64_url_decode(&encoded);
    let expected: [u8; 32] = Sha256::digest(&raw_id).into();
    assert_eq!(rows[0].id_hash, expected, "the key is SHA-256 of the ID");
    assert_ne!(rows[0].id_hash, raw_id, "the ID itself is not stored");
    assert!(!rows[0].data.to_string().contains(&encoded));
}

fn base64_url_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .expect("base64url")
}

async fn readers_get_no_cookie_and_no_row(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };

    for path in ["/user", "/name", "/login", "/logout", "/static/style.css"] {
        let response = app.get(path).await;
        let cookies = set_cookies(&response);
        let page = read(response).await;
        assert_status(&page, Status::Ok);
        assert!(cookies.is_empty(), "{path} set {cookies:?}");
    }

    assert!(app.rows().await.is_empty());
}

async fn garbage_and_tampered_cookies_are_no_session_and_are_removed(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.get("/user/Ada").await;
    let good = app.raw_cookie().expect("cookie");
    let mut flipped = good.clone().into_bytes();
    let middle = flipped.len() / 2;
    flipped[middle] = if flipped[middle] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(flipped).expect("ascii");

    for bad in [
        tampered.as_str(),
        "garbage",
        "",
        "%%%%",
        &"A".repeat(8000),
        &good[..good.len() - 4],
    ] {
        let response = app.get_with_cookie("/user", bad).await;
        let cookies = set_cookies(&response);
        let page = read(response).await;
        assert_status(&page, Status::Ok);
        assert!(page.1.contains("user logged out!"), "{bad}");
        assert!(
            cookies
                .iter()
                .any(|c| c.starts_with("session=;") && c.contains("Max-Age=0")),
            "stale cookie removed for {bad:?}: {cookies:?}"
        );
    }

    let still = read(app.get_with_cookie("/user", &good).await).await;
    assert!(
        still.1.contains("<h1>Ada</h1>"),
        "the real session is untouched"
    );
    assert_eq!(app.rows().await.len(), 1);
}

async fn a_cookie_sealed_with_another_key_is_no_session(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.get("/user/Ada").await;
    let id = app.session_id().expect("id");
    // Seal the real ID with a different key, as a forger without the secret would have to.
    let other_key = rocket::http::private::cookie::Key::generate();
    let mut jar = rocket::http::private::cookie::CookieJar::new();
    jar.private_mut(&other_key)
        .add(Cookie::new(COOKIE, id.encode()));
    let forged = jar.get(COOKIE).expect("sealed").value().to_owned();

    let page = read(app.get_with_cookie("/user", &forged).await).await;

    assert!(page.1.contains("user logged out!"));
}

async fn a_sealed_but_unknown_id_is_never_adopted(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let planted = SessionId::generate();

    let response = app
        .client
        .get("/user/Mallory")
        .private_cookie(Cookie::new(COOKIE, planted.encode()))
        .dispatch()
        .await;
    let page = read(response).await;

    assert_status(&page, Status::Ok);
    let rows = app.rows().await;
    assert_eq!(rows.len(), 1);
    assert_ne!(
        rows[0].hash(),
        planted.hash(),
        "the planted ID was not adopted"
    );
    let issued = app.session_id().expect("a new cookie");
    assert_ne!(issued, planted);
    assert_eq!(rows[0].hash(), issued.hash());
}

async fn a_sealed_but_malformed_id_is_no_session(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };

    for value in ["short", "", &"A".repeat(4096)] {
        let response = app
            .client
            .get("/user")
            .private_cookie(Cookie::new(COOKIE, value.to_owned()))
            .dispatch()
            .await;
        let page = read(response).await;
        assert_status(&page, Status::Ok);
        assert!(page.1.contains("user logged out!"));
    }
    assert!(app.rows().await.is_empty());
}
