//! Hostile input, as property tests: whatever arrives as the session cookie or as a name, the app
//! never fails with a 5xx, never adopts a session it did not issue, refuses exactly the invalid
//! names with a 4xx, and stores exactly the valid ones.

use latch::SessionId;
use percent_encoding::{NON_ALPHANUMERIC, percent_encode};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseResult, TestRunner};
use rocket::http::{ContentType, Cookie, Status};
use rocket::local::asynchronous::{Client, LocalRequest, LocalResponse};
use serde_json::{Value, json};

use crate::helpers::{
    Backend, COOKIE, CSRF_COOKIE, SessionRow, TestDb, csrf_token_in, find_row, test_figment,
};

/// Cases per property: enough to hit every kind of input many times, few enough for seconds.
const CASES: u32 = 128;

#[test]
fn no_cookie_value_is_a_5xx_or_a_session() {
    let app = App::start();
    let strategy = prop_oneof![
        any::<String>().prop_map(Presented::Raw),
        vec(hostile_char(), 0..300).prop_map(|chars| Presented::Raw(String::from_iter(chars))),
        // Shaped like a sealed cookie (base64 of nonce + ciphertext), but not sealed by us.
        vec(any::<u8>(), 0..120).prop_map(|bytes| {
            use base64::Engine as _;
            Presented::Raw(base64::engine::general_purpose::STANDARD.encode(bytes))
        }),
        // Sealed with the app's own key, so only the ID check stands in the way.
        any::<String>().prop_map(Presented::Sealed),
        any::<[u8; 32]>().prop_map(|bytes| {
            use base64::Engine as _;
            Presented::Sealed(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
        }),
    ];

    app.check(&strategy, |cookie| {
        // Reading pages: the visitor is a new one, and nothing is written.
        for uri in ["/user", "/name", "/logout"] {
            let before = app.rows();
            let reply = app.send(|client| cookie.attach(client.get(uri)));
            prop_assert_eq!(
                reply.status,
                Status::Ok,
                "{} {:?}: {}",
                uri,
                cookie,
                reply.body
            );
            prop_assert_eq!(&app.rows(), &before, "{} wrote to the database", uri);
            prop_assert!(reply.session.is_none(), "{} issued a session", uri);
            prop_assert!(
                reply.set_cookies.iter().all(|c| c.contains("Max-Age=0")),
                "{} set a cookie other than a removal: {:?}",
                uri,
                reply.set_cookies
            );
        }
        // A writing page: a fresh session, never one filed under the presented ID.
        let before = app.rows();
        let reply = app.send(|client| cookie.attach(client.get("/")));
        let after = app.rows();
        prop_assert_eq!(reply.status, Status::Ok, "{:?}: {}", cookie, reply.body);
        prop_assert!(reply.body.contains("for the first time"), "{}", reply.body);
        let Some(issued) = reply.session else {
            return Err(TestCaseError::fail("the counter issued no session"));
        };
        prop_assert_eq!(after.len(), before.len() + 1);
        prop_assert_eq!(app.row(&after, &issued), Some(&json!({ "page_views": 1 })));
        if let Some(presented) = cookie.session_id() {
            prop_assert_ne!(
                issued.encode(),
                presented.encode(),
                "the presented ID was adopted"
            );
            prop_assert!(app.row(&after, &presented).is_none());
        }
        Ok(())
    });
}

#[test]
fn names_in_the_url_are_stored_exactly_when_valid() {
    let app = App::start();
    let strategy = prop_oneof![
        3 => hostile_name().prop_map(String::into_bytes),
        // Bytes that need not be UTF-8: Rocket decodes them lossily, into U+FFFD.
        1 => vec(any::<u8>(), 0..80),
    ];

    app.check(&strategy, |bytes| {
        let uri = format!("/user/{}", percent_encode(&bytes, NON_ALPHANUMERIC));
        let name = String::from_utf8_lossy(&bytes);
        let before = app.rows();
        let reply = app.send(|client| client.get(uri.clone()));
        // `/user/` is another page (the one that shows the name), not an empty name.
        if name.is_empty() {
            prop_assert!(!reply.status.class().is_server_error());
            prop_assert_eq!(&app.rows(), &before);
            return Ok(());
        }
        app.stored_exactly_when_valid(&name, &reply, &before, Status::Ok)?;
        if is_valid_name(&name) {
            // Shown back, HTML-escaped.
            let shown = format!("<strong>{}</strong>", escape_html(&name));
            prop_assert!(
                reply.body.contains(&shown),
                "{} not in:\n{}",
                shown,
                reply.body
            );
        }
        Ok(())
    });
}

#[test]
fn names_in_the_login_form_are_stored_exactly_when_valid() {
    let app = App::start();
    // (the form body, the name the app should see in it)
    let strategy = prop_oneof![
        3 => hostile_name().prop_map(|name| {
            let body = form_urlencoded::Serializer::new(String::new())
                .append_pair("username", &name)
                .finish();
            (body, name)
        }),
        // Bytes that need not be UTF-8, decoded lossily as in the URL.
        1 => vec(any::<u8>(), 0..80).prop_map(|bytes| {
            let encoded: String = form_urlencoded::byte_serialize(&bytes).collect();
            (format!("username={encoded}"), String::from_utf8_lossy(&bytes).into_owned())
        }),
    ];

    app.check(&strategy, |(body, name)| {
        let before = app.rows();
        let (csrf_cookie, token) = app.csrf();
        let reply = app.send(|client| {
            client
                .post("/login")
                .header(ContentType::Form)
                .cookie(Cookie::new(CSRF_COOKIE, csrf_cookie))
                .body(format!("csrf_token={token}&{body}"))
        });
        app.stored_exactly_when_valid(&name, &reply, &before, Status::SeeOther)
    });
}

#[test]
fn names_in_the_json_api_are_stored_exactly_when_valid() {
    let app = App::start();

    app.check(&hostile_name(), |name| {
        let before = app.rows();
        let reply = app.send(|client| {
            client
                .post("/name")
                .header(ContentType::JSON)
                .body(json!({ "name": name }).to_string())
        });
        app.stored_exactly_when_valid(&name, &reply, &before, Status::Ok)?;
        let body: Value = serde_json::from_str(&reply.body).expect("a JSON body");
        if is_valid_name(&name) {
            prop_assert_eq!(body, json!({ "name": name }));
        } else {
            prop_assert!(body["error"].is_string(), "{}", reply.body);
        }
        Ok(())
    });
}

/// The rule the app documents: 1–64 characters, no control characters, no invisible format
/// characters (Unicode category Cf), no U+FFFD (which is what bytes that were not UTF-8 turn into).
fn is_valid_name(name: &str) -> bool {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    (1..=64).contains(&name.chars().count())
        && !name.chars().any(|c| {
            c.is_control()
                || c == char::REPLACEMENT_CHARACTER
                || c.general_category() == GeneralCategory::Format
        })
}

/// Tera's HTML escaping, which the pages apply to every name they show.
fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#x27;"),
            '/' => escaped.push_str("&#x2F;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// A character a person might type, including the ones URLs, forms, HTML and JSON treat specially.
fn printable_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => proptest::char::range('a', 'z'),
        2 => proptest::sample::select(vec![
            ' ', '/', '%', '+', '&', '=', '?', '#', ';', '.', '"', '\'', '<', '>', '\\', 'é', '李',
            '😀', '\u{200b}', '\u{202e}', '\u{2028}', '\u{feff}',
        ]),
        2 => any::<char>().prop_filter("printable", |c| {
            !c.is_control() && *c != char::REPLACEMENT_CHARACTER
        }),
    ]
}

/// Any character, with control characters and U+FFFD much more likely than chance.
fn hostile_char() -> impl Strategy<Value = char> {
    prop_oneof![
        6 => printable_char(),
        1 => proptest::char::range('\0', '\u{1f}'),
        1 => proptest::char::range('\u{7f}', '\u{9f}'),
        1 => Just(char::REPLACEMENT_CHARACTER),
    ]
}

/// Names of every kind: short and clean, around the 64-character limit, with one bad character
/// somewhere, and very long.
fn hostile_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => vec(printable_char(), 0..8).prop_map(String::from_iter),
        3 => vec(printable_char(), 62..67).prop_map(String::from_iter),
        3 => (vec(printable_char(), 0..20), hostile_char(), any::<proptest::sample::Index>())
            .prop_map(|(mut chars, bad, at)| {
                chars.insert(at.index(chars.len() + 1), bad);
                String::from_iter(chars)
            }),
        1 => vec(hostile_char(), 100..3000).prop_map(String::from_iter),
    ]
}

/// A `session` cookie as a client presents it.
#[derive(Debug, Clone)]
enum Presented {
    /// This exact value, as an attacker or a broken client would send it.
    Raw(String),
    /// This value sealed with the app's key, as if the app had issued it.
    Sealed(String),
}

impl Presented {
    fn attach<'c>(&self, request: LocalRequest<'c>) -> LocalRequest<'c> {
        match self {
            Self::Raw(value) => request.cookie(Cookie::new(COOKIE, value.clone())),
            Self::Sealed(value) => request.private_cookie(Cookie::new(COOKIE, value.clone())),
        }
    }

    /// The session ID this cookie claims, when it is well-formed and sealed by us.
    fn session_id(&self) -> Option<SessionId> {
        match self {
            Self::Raw(_) => None,
            Self::Sealed(value) => SessionId::parse(value),
        }
    }
}

/// What a test needs of a response.
struct Reply {
    status: Status,
    body: String,
    set_cookies: Vec<String>,
    /// The session ID in a `session` cookie the response set, opened with the app's key.
    session: Option<SessionId>,
}

impl Reply {
    async fn of(response: LocalResponse<'_>) -> Self {
        let status = response.status();
        let set_cookies = response
            .headers()
            .get("Set-Cookie")
            .filter(|c| c.starts_with(&format!("{COOKIE}=")))
            .map(str::to_owned)
            .collect();
        let session = response
            .cookies()
            .get_private(COOKIE)
            .and_then(|cookie| SessionId::parse(cookie.value()));
        let body = response.into_string().await.unwrap_or_default();
        Self {
            status,
            body,
            set_cookies,
            session,
        }
    }
}

/// The app in process on a fresh SQLite database, driven from sync property-test closures through
/// a runtime of its own. An untracked client: every request carries only what the case gives it.
struct App {
    client: Option<Client>,
    runtime: tokio::runtime::Runtime,
    db: TestDb,
}

impl App {
    fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime");
        let (db, client) = runtime.block_on(async {
            let db = TestDb::create(Backend::Sqlite).await.expect("sqlite");
            let client = Client::untracked(latch_walkthrough::rocket(test_figment(db.url())))
                .await
                .expect("the app launches");
            (db, client)
        });
        Self {
            client: Some(client),
            runtime,
            db,
        }
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("the client lives until drop")
    }

    /// Runs `property` on `CASES` inputs; on failure, panics with the smallest failing input.
    fn check<S: Strategy>(&self, strategy: &S, property: impl Fn(S::Value) -> TestCaseResult)
    where
        S::Value: std::fmt::Debug,
    {
        let config = Config {
            cases: CASES,
            // The failing input is in the panic message; no regression files in the repo.
            failure_persistence: None,
            // Shrinking replays requests: bounded, so a failure is reported in seconds.
            max_shrink_iters: 512,
            ..Config::default()
        };
        if let Err(error) = TestRunner::new(config).run(strategy, property) {
            panic!("{error}");
        }
    }

    /// Dispatches the request `build` makes and reads the response.
    /// A browser's CSRF cookie (raw, encrypted) and the token its forms carry.
    fn csrf(&self) -> (String, String) {
        self.runtime.block_on(async {
            let response = self.client().get("/login").dispatch().await;
            let cookie = response
                .cookies()
                .get(CSRF_COOKIE)
                .map(|cookie| cookie.value().to_owned())
                .expect("the login form sets a CSRF cookie");
            let page = response.into_string().await.unwrap_or_default();
            (cookie, csrf_token_in(&page))
        })
    }

    fn send(&self, build: impl FnOnce(&Client) -> LocalRequest<'_>) -> Reply {
        self.runtime
            .block_on(async { Reply::of(build(self.client()).dispatch().await).await })
    }

    /// Every row of the `sessions` table, in a fixed order.
    fn rows(&self) -> Vec<SessionRow> {
        self.runtime.block_on(self.db.rows())
    }

    /// The data of the row filed under `id`, if any.
    fn row<'r>(&self, rows: &'r [SessionRow], id: &SessionId) -> Option<&'r Value> {
        find_row(rows, id).map(|row| &row.data)
    }

    /// A valid `name` got `ok` and a new session holding exactly it; an invalid one got a 4xx and
    /// left the table as it was.
    fn stored_exactly_when_valid(
        &self,
        name: &str,
        reply: &Reply,
        before: &[SessionRow],
        ok: Status,
    ) -> TestCaseResult {
        let after = self.rows();
        prop_assert!(
            !reply.status.class().is_server_error(),
            "{}: {}",
            reply.status,
            reply.body
        );
        if is_valid_name(name) {
            prop_assert_eq!(reply.status, ok, "{}", reply.body);
            let Some(id) = &reply.session else {
                return Err(TestCaseError::fail("no session cookie for a valid name"));
            };
            prop_assert_eq!(after.len(), before.len() + 1);
            prop_assert_eq!(self.row(&after, id), Some(&json!({ "name": name })));
        } else {
            prop_assert!(
                reply.status.class().is_client_error(),
                "an invalid name got {}: {}",
                reply.status,
                reply.body
            );
            prop_assert_eq!(&after, before, "an invalid name changed the table");
            prop_assert!(reply.session.is_none());
        }
        Ok(())
    }
}

impl Drop for App {
    fn drop(&mut self) {
        // Shut the app down inside its runtime: its pool and tasks need one to close.
        if let Some(client) = self.client.take() {
            self.runtime.block_on(async {
                client.terminate().await;
            });
        }
    }
}
