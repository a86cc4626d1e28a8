//! The session inspector, `GET /session`: it shows the requester's own session cut short where
//! a value is a credential, escapes what the session holds, stores nothing, and is never cached.

use std::sync::Arc;

use latch::time::OffsetDateTime;
use latch::{Database, SessionManager};
use rocket::http::{Cookie, SameSite, Status};
use rocket::local::asynchronous::{Client, LocalResponse};
use serde_json::json;

use crate::concurrency::Unheard;
use crate::helpers::{
    Backend, COOKIE, TestApp, TestDb, assert_status, backend_tests, read, set_cookies, test_figment,
};

backend_tests!(
    the_inspector_shows_the_cookie_the_id_and_the_row_cut_short,
    without_a_cookie_the_inspector_says_so_and_stores_nothing,
    each_browser_inspects_only_its_own_session,
    session_data_is_escaped_on_the_inspector,
    the_inspector_is_never_cached,
    a_forged_or_tampered_cookie_is_inspected_as_no_session,
    the_inspector_describes_the_cookie_as_it_was_set,
    the_inspector_never_shows_a_stale_cached_copy,
    the_countdown_script_is_served_and_allowed_by_the_policy,
);

/// `text` as Tera's autoescape writes it into a page.
fn escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
        .replace('/', "&#x2F;")
}

/// Asserts that `page` shows `whole` cut to its first `shown` characters and an ellipsis, and
/// nothing longer of it.
#[track_caller]
fn assert_cut_short(page: &str, whole: &str, shown: usize, what: &str) {
    assert!(
        page.contains(&format!("{}…", escaped(&whole[..shown]))),
        "the page shows the start of the {what}:\n{page}"
    );
    // Escaped or not, no more than the prefix: not even one more character.
    for longer in [&whole[..=shown], whole] {
        assert!(
            !page.contains(longer) && !page.contains(&escaped(longer)),
            "the page shows more of the {what} than its prefix:\n{page}"
        );
    }
}

/// A cookie value as the browser stores it: percent-encoded, as Rocket sends it in `Set-Cookie`
/// (the test client's jar holds it decoded).
fn as_the_browser_holds_it(value: &str) -> String {
    let pair = Cookie::new(COOKIE, value.to_owned()).encoded().to_string();
    pair.split_once('=').expect("name=value").1.to_owned()
}

/// Whether `page` has an attribute like ` onclick=`: inline script, which the policy forbids.
fn has_event_handler(page: &str) -> bool {
    page.match_indices(" on").any(|(at, _)| {
        let rest = &page[at + 3..];
        let name = rest.len()
            - rest
                .trim_start_matches(|c: char| c.is_ascii_alphabetic())
                .len();
        name > 0 && rest[name..].starts_with('=')
    })
}

/// The text of every `Set-Cookie` header, the CSRF cookie's included.
fn every_set_cookie(response: &LocalResponse<'_>) -> Vec<String> {
    response
        .headers()
        .get("Set-Cookie")
        .map(str::to_owned)
        .collect()
}

async fn the_inspector_shows_the_cookie_the_id_and_the_row_cut_short(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.get("/user/Ada").await;
    let raw = app.raw_cookie().expect("a session cookie");
    let id = app.session_id().expect("a session ID").encode();
    let before = app.rows().await;

    let page = read(app.get("/session").await).await;

    let rows = app.rows().await;
    assert_status(&page, Status::Ok);
    assert_eq!(rows, before, "inspecting writes nothing");
    let [row] = rows.as_slice() else {
        panic!("one session: {rows:?}");
    };
    let page = &page.1;
    assert!(
        page.contains(&escaped("\"name\": \"Ada\"")),
        "the data as JSON:\n{page}"
    );
    let held = as_the_browser_holds_it(&raw);
    assert!(
        page.contains(&format!("({} characters", held.len())),
        "{page}"
    );
    assert_cut_short(page, &held, 6, "cookie value");
    assert!(
        !page.contains(&raw) && !page.contains(&escaped(&raw)),
        "{page}"
    );
    assert_cut_short(page, &id, 6, "session ID");
    assert_cut_short(page, &row.hex_hash(), 8, "ID hash");
    let absolute = row.created_at + 86_400_000;
    for (label, at) in [
        ("Created", row.created_at),
        ("Idle deadline", row.expires_at),
        ("Absolute deadline", absolute),
    ] {
        assert!(page.contains(label), "{label}:\n{page}");
        assert!(
            page.contains(&format!(r#"data-unix-ms="{at}""#)),
            "{label} at {at}:\n{page}"
        );
    }
    assert!(
        page.contains("in 59 min") || page.contains("in 1 h 0 min"),
        "the time left before the idle deadline:\n{page}"
    );
    assert!(
        page.contains("in 23 h 59 min") || page.contains("in 1 d 0 h"),
        "the time left before the absolute deadline:\n{page}"
    );
    assert!(
        page.contains(&format!("<dd>{} (one more with every write", row.version)),
        "the version:\n{page}"
    );
}

async fn without_a_cookie_the_inspector_says_so_and_stores_nothing(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };

    let response = app.get("/session").await;
    let cookies = every_set_cookie(&response);
    let page = read(response).await;

    assert_status(&page, Status::Ok);
    assert!(page.1.contains("You have no session yet."), "{}", page.1);
    assert!(page.1.contains("holds no <code>session</code> cookie"));
    for step in [
        r#"href="/""#,
        r#"href="/user/Ada""#,
        r#"href="/user""#,
        r#"href="/login""#,
        r#"href="/logout""#,
        r#"href="/name""#,
    ] {
        assert!(page.1.contains(step), "a link to every step: {step}");
    }
    assert!(cookies.is_empty(), "no cookie at all: {cookies:?}");
    assert!(app.raw_cookie().is_none());
    assert!(app.rows().await.is_empty(), "no row");
}

async fn each_browser_inspects_only_its_own_session(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let other = app.second_instance().await;
    app.get("/user/Ada").await;
    other.get("/user/Grace").dispatch().await;

    let mine = read(app.get("/session").await).await;
    let theirs = read(other.get("/session").dispatch().await).await;

    let ada = escaped("\"name\": \"Ada\"");
    let grace = escaped("\"name\": \"Grace\"");
    assert_status(&mine, Status::Ok);
    assert_status(&theirs, Status::Ok);
    assert!(
        mine.1.contains(&ada) && !mine.1.contains("Grace"),
        "{}",
        mine.1
    );
    assert!(
        theirs.1.contains(&grace) && !theirs.1.contains(&ada),
        "{}",
        theirs.1
    );
    let my_id = app.session_id().expect("my session").encode();
    let their_cookie = other.cookies().get_private(COOKIE).expect("their session");
    assert!(mine.1.contains(&format!("{}…", &my_id[..6])));
    assert!(!mine.1.contains(&format!("{}…", &their_cookie.value()[..6])));
    assert_eq!(app.rows().await.len(), 2);
}

async fn session_data_is_escaped_on_the_inspector(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let other = app.second_instance().await;
    app.get("/user/%3Cscript%3Ealert(1)%3C%2Fscript%3E").await;
    let posted = other
        .post("/name")
        .header(rocket::http::ContentType::JSON)
        .body(json!({ "name": "<img src=x onerror=alert(2)>" }).to_string())
        .dispatch()
        .await
        .status();

    let script = read(app.get("/session").await).await;
    let image = read(other.get("/session").dispatch().await).await;

    assert_eq!(posted, Status::Ok);
    assert_status(&script, Status::Ok);
    assert!(!script.1.contains("<script>alert"), "{}", script.1);
    assert!(
        script
            .1
            .contains("&lt;script&gt;alert(1)&lt;&#x2F;script&gt;"),
        "{}",
        script.1
    );
    assert!(!image.1.contains("<img"), "{}", image.1);
    assert!(
        image.1.contains("&lt;img src=x onerror=alert(2)&gt;"),
        "{}",
        image.1
    );
}

async fn the_inspector_is_never_cached(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let without = app.get("/session").await;
    let without = (
        without
            .headers()
            .get_one("Cache-Control")
            .map(str::to_owned),
        without.headers().get("Vary").collect::<Vec<_>>().join(","),
    );
    app.get("/user/Ada").await;

    let with = app.get("/session").await;

    for (cache, vary) in [
        without,
        (
            with.headers().get_one("Cache-Control").map(str::to_owned),
            with.headers().get("Vary").collect::<Vec<_>>().join(","),
        ),
    ] {
        assert_eq!(cache.as_deref(), Some("no-store"));
        assert!(vary.to_ascii_lowercase().contains("cookie"), "{vary}");
    }
}

async fn a_forged_or_tampered_cookie_is_inspected_as_no_session(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.get("/user/Ada").await;
    let good = app.raw_cookie().expect("a session cookie");
    let mut flipped = good.clone().into_bytes();
    let middle = flipped.len() / 2;
    flipped[middle] = if flipped[middle] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(flipped).expect("ASCII");
    // The real ID, sealed with a key that is not the server's.
    let id = app.session_id().expect("a session ID");
    let mut jar = rocket::http::private::cookie::CookieJar::new();
    jar.private_mut(&rocket::http::private::cookie::Key::generate())
        .add(Cookie::new(COOKIE, id.encode()));
    let forged = jar.get(COOKIE).expect("sealed").value().to_owned();

    for bad in [tampered.as_str(), forged.as_str(), "f0rgedValue"] {
        let response = app.get_with_cookie("/session", bad).await;
        let cookies = set_cookies(&response);
        let page = read(response).await;

        assert_status(&page, Status::Ok);
        assert!(
            page.1.contains("You have no session yet."),
            "{bad}: {}",
            page.1
        );
        assert!(page.1.contains("opens no session"), "{bad}");
        assert!(!page.1.contains("&quot;name&quot;"), "{bad}: no one's data");
        assert!(!page.1.contains(&bad[..10.min(bad.len())]), "not echoed");
        assert!(
            cookies
                .iter()
                .any(|c| c.starts_with("session=;") && c.contains("Max-Age=0")),
            "{bad}: the cookie is removed: {cookies:?}"
        );
    }
    assert_eq!(app.rows().await.len(), 1, "no row was made");
    let real = read(app.get_with_cookie("/session", &good).await).await;
    assert!(real.1.contains(&escaped("\"name\": \"Ada\"")), "{}", real.1);
}

async fn the_inspector_describes_the_cookie_as_it_was_set(backend: Backend) {
    for secure in [false, true] {
        let settings = [("session.cookie_secure", json!(secure))];
        let Some(app) = TestApp::spawn_with(backend, &settings).await else {
            return;
        };
        let response = app.get("/user/Ada").await;
        let set = set_cookies(&response);
        let [set] = set.as_slice() else {
            panic!("one session cookie: {set:?}");
        };
        let cookie = Cookie::parse(set.clone()).expect("a valid Set-Cookie");

        let page = read(app.get("/session").await).await.1;

        let row = app.current_row().await.expect("stored");
        assert_eq!(cookie.http_only(), Some(true));
        assert!(page.contains("<code>HttpOnly</code>"), "{page}");
        assert_eq!(cookie.same_site(), Some(SameSite::Lax));
        assert!(page.contains("<code>SameSite=Lax</code>"), "{page}");
        assert_eq!(cookie.path(), Some("/"));
        assert!(page.contains("<code>Path=/</code>"), "{page}");
        assert_eq!(cookie.domain(), None);
        assert!(page.contains("no <code>Domain</code>"), "{page}");
        if secure {
            assert_eq!(cookie.secure(), Some(true));
            assert!(page.contains("<code>Secure</code> (sent over HTTPS only)"));
        } else {
            assert_ne!(cookie.secure(), Some(true));
            assert!(page.contains("not <code>Secure</code>"), "{page}");
        }
        // Max-Age and Expires end with the idle deadline the page shows (rounded up to seconds).
        let expires = cookie
            .expires_datetime()
            .expect("Expires")
            .unix_timestamp()
            .saturating_mul(1000);
        // Up to a second of rounding, plus the moment between the guard's clock and the seal's.
        assert!(
            (0..1500).contains(&(expires - row.expires_at)),
            "Expires {expires} vs deadline {}",
            row.expires_at
        );
        assert!(page.contains(&format!(r#"data-unix-ms="{}""#, row.expires_at)));
    }
}

/// A cache that has not heard another instance's change serves the guard a stale copy; the
/// inspector must confirm it before showing anything, as `get` does.
async fn the_inspector_never_shows_a_stale_cached_copy(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let config = latch_walkthrough::config::latch_config(&test_figment(db.url())).expect("config");
    let database = Database::connect(&config.database).await.expect("connect");
    let shared = database
        .session_store(&latch::Table::default(), &config.session)
        .await
        .expect("store");
    let store = Arc::new(Unheard::new(Arc::clone(&shared)));
    let rocket = rocket::custom(test_figment(db.url()))
        .manage(SessionManager::new(store, config.session))
        .attach(latch_walkthrough::templates::stage())
        .mount("/", latch_walkthrough::routes::pages())
        .mount("/", latch_walkthrough::routes::inspect());
    let client = Client::tracked(rocket).await.expect("launch");
    client.get("/user/Ada").dispatch().await;
    let row = db.rows().await.pop().expect("stored");
    let hash = row.hash();

    // Another instance renames the session, then ends it; this one hears of neither.
    let mut renamed = shared
        .load(&hash, OffsetDateTime::now_utc())
        .await
        .expect("load")
        .expect("live");
    renamed.data = json!({ "name": "Grace" })
        .as_object()
        .cloned()
        .expect("an object");
    renamed.version += 1;
    assert!(
        shared
            .save(&hash, &renamed, OffsetDateTime::now_utc())
            .await
            .expect("save")
    );
    let changed = read(client.get("/session").dispatch().await).await;
    shared.delete(&hash).await.expect("delete");
    let ended = read(client.get("/session").dispatch().await).await;

    assert!(
        changed.1.contains(&escaped("\"name\": \"Grace\""))
            && !changed.1.contains(&escaped("\"name\": \"Ada\"")),
        "the current data, not the cached copy:\n{}",
        changed.1
    );
    assert!(changed.1.contains("<dd>1 (one more"), "the current version");
    assert!(
        ended.1.contains("You have no session yet.") && !ended.1.contains("Grace"),
        "an ended session is not shown:\n{}",
        ended.1
    );
    client.terminate().await;
}

async fn the_countdown_script_is_served_and_allowed_by_the_policy(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.get("/user/Ada").await;

    let page = app.get("/session").await;
    let csp = page
        .headers()
        .get_one("Content-Security-Policy")
        .unwrap_or_default()
        .to_owned();
    let page = read(page).await.1;
    let script = app.get("/static/countdown.js").await;
    let content_type = script.content_type();
    let cookies = every_set_cookie(&script);
    let script = read(script).await;

    assert!(
        page.contains(r#"<script src="/static/countdown.js" defer></script>"#),
        "{page}"
    );
    assert!(!page.contains("<script>"), "no inline script: {page}");
    assert!(
        !has_event_handler(&page),
        "no event handler attributes: {page}"
    );
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_status(&script, Status::Ok);
    assert_eq!(content_type, Some(rocket::http::ContentType::JavaScript));
    assert!(script.1.contains("data-unix-ms") || script.1.contains("unixMs"));
    assert!(cookies.is_empty(), "{cookies:?}");
}
