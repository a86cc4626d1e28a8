//! `TestApp`: the real app (`latch::rocket`) on a fresh database per test, with a local client
//! and direct access to the `sessions` table for assertions.

use std::io::Write as _;
use std::sync::{Arc, Once};

use latch::{IdHash, SessionId, SessionManager, SessionStore};
use rocket::figment::Figment;
use rocket::http::{Cookie, Header, Status};
use rocket::local::asynchronous::{Client, LocalResponse};
use serde_json::Value;
use sqlx::postgres::PgPool;
use sqlx::{AssertSqlSafe, Row};

/// The admin URL of a Postgres server to make per-test databases on, e.g.
/// `postgres://postgres@127.0.0.1:5432/postgres`. Unset: the Postgres tests are skipped.
pub const POSTGRES_URL_VAR: &str = "LATCH_TEST_POSTGRES_URL";
/// Set to `1` to make a missing Postgres URL a failure instead of a skip (CI does).
pub const REQUIRE_POSTGRES_VAR: &str = "LATCH_REQUIRE_POSTGRES";

/// A fixed 256-bit key, so two app instances in one test can read each other's cookies.
pub const TEST_SECRET_KEY: &str = "hPRYyVRiMyxpw5sBB1XeCMN1kFsDCqKvBi2QJxBVHQk=";
pub const COOKIE: &str = "session";
pub const CSRF_COOKIE: &str = "csrf";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each listed `async fn name(backend: Backend)` as two tests, `sqlite::name` and
/// `postgres::name`: the same suite against every backend.
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::helpers::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::helpers::Backend::Postgres).await;
                }
            )*
        }
    };
}
pub(crate) use backend_tests;

/// A database that exists for one test and is removed after it.
pub enum TestDb {
    Sqlite {
        _dir: tempfile::TempDir,
        url: String,
    },
    Postgres {
        admin_url: String,
        name: String,
        url: String,
    },
}

impl TestDb {
    /// A fresh, empty database, or `None` (after saying so) when Postgres is not configured.
    pub async fn create(backend: Backend) -> Option<Self> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("latch.db").display());
                Some(Self::Sqlite { _dir: dir, url })
            }
            Backend::Postgres => {
                let admin_url = postgres_admin_url()?;
                let name = format!(
                    "latch_test_{}",
                    SessionId::generate().encode().to_lowercase()
                )
                .replace('-', "_");
                let mut admin = connect_admin(&admin_url).await;
                sqlx::query(AssertSqlSafe(format!(r#"create database "{name}""#)))
                    .execute(&mut admin)
                    .await
                    .expect("create test database");
                let url = database_url_for(&admin_url, &name);
                Some(Self::Postgres {
                    admin_url,
                    name,
                    url,
                })
            }
        }
    }

    pub fn url(&self) -> &str {
        match self {
            Self::Sqlite { url, .. } | Self::Postgres { url, .. } => url,
        }
    }

    /// Every row of the `sessions` table, in `id_hash` order: the one way the tests read the
    /// table, whether the app runs in process ([`TestApp::rows`]) or as a separate process, and
    /// whether it is running or stopped. Reads over a connection of its own, closed before
    /// returning.
    pub async fn rows(&self) -> Vec<SessionRow> {
        use sqlx::Connection as _;
        // The same code for either backend; the connection and row types differ, so a macro
        // rather than a generic fn.
        macro_rules! read_all {
            ($connection:ty) => {{
                let mut connection = <$connection>::connect(self.url())
                    .await
                    .unwrap_or_else(|error| panic!("open {}: {error}", self.url()));
                let rows = sqlx::query(
                    "select id_hash, data, version, created_at, expires_at, user_id \
                     from sessions order by id_hash",
                )
                .fetch_all(&mut connection)
                .await
                .expect("read the sessions table")
                .iter()
                .map(|row| SessionRow {
                    id_hash: row.get("id_hash"),
                    data: serde_json::from_str(row.get("data")).expect("JSON session data"),
                    version: row.get("version"),
                    created_at: row.get("created_at"),
                    expires_at: row.get("expires_at"),
                    user_id: row.get("user_id"),
                })
                .collect();
                connection.close().await.expect("close the connection");
                rows
            }};
        }
        match self {
            Self::Sqlite { .. } => read_all!(sqlx::SqliteConnection),
            Self::Postgres { .. } => read_all!(sqlx::PgConnection),
        }
    }

    /// Runs one SQL statement over a connection of its own (for tests that plant state the app
    /// cannot be asked to make).
    pub async fn execute_sql(&self, sql: &str) {
        use sqlx::Connection as _;
        macro_rules! execute {
            ($connection:ty) => {{
                let mut connection = <$connection>::connect(self.url()).await.expect("connect");
                sqlx::query(AssertSqlSafe(sql.to_owned()))
                    .execute(&mut connection)
                    .await
                    .unwrap_or_else(|error| panic!("{sql}: {error}"));
            }};
        }
        match self {
            Self::Sqlite { .. } => execute!(sqlx::SqliteConnection),
            Self::Postgres { .. } => execute!(sqlx::PgConnection),
        }
    }

    /// The one text value `sql` selects.
    pub async fn query_text(&self, sql: &str) -> String {
        use sqlx::Connection as _;
        macro_rules! fetch {
            ($connection:ty) => {{
                let mut connection = <$connection>::connect(self.url()).await.expect("connect");
                sqlx::query_scalar(AssertSqlSafe(sql.to_owned()))
                    .fetch_one(&mut connection)
                    .await
                    .unwrap_or_else(|error| panic!("{sql}: {error}"))
            }};
        }
        match self {
            Self::Sqlite { .. } => fetch!(sqlx::SqliteConnection),
            Self::Postgres { .. } => fetch!(sqlx::PgConnection),
        }
    }

    /// A migrated Postgres database holding `count` sessions inserted straight into the table,
    /// for tests of the SQL itself: row `i` (1..=count) has the ID hash `sha256(i)` and the
    /// deadline `expires_at`, an SQL expression in `i`. `None` when Postgres is skipped.
    pub async fn seeded_postgres(count: i64, expires_at: &str) -> Option<(Self, PgPool)> {
        let db = Self::create(Backend::Postgres).await?;
        let pool = PgPool::connect(db.url()).await.expect("connect");
        latch::schema::apply_postgres(&pool, &latch::Table::default())
            .await
            .expect("migrate");
        sqlx::query(AssertSqlSafe(format!(
            "insert into sessions (id_hash, data, version, created_at, expires_at) \
             select sha256(i::text::bytea), '{{}}', 0, 0, {expires_at} \
             from generate_series(1, $1) i"
        )))
        .bind(count)
        .execute(&pool)
        .await
        .expect("seed sessions");
        Some((db, pool))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Self::Postgres {
            admin_url, name, ..
        } = self
        else {
            return;
        };
        let (admin_url, db_name) = (admin_url.clone(), name.clone());
        // Drop runs inside the test's runtime, which cannot block on itself: use a thread.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                let mut admin = connect_admin(&admin_url).await;
                sqlx::query(AssertSqlSafe(format!(
                    r#"drop database if exists "{db_name}" with (force)"#
                )))
                .execute(&mut admin)
                .await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(_))) {
            eprintln!("could not drop test database {name}: {dropped:?}");
        }
    }
}

/// Says once, straight to stderr (the test harness would swallow eprintln! from a passing
/// test), that a group of tests was skipped and why.
pub fn say_skipped(once: &'static Once, why: &str) {
    once.call_once(|| {
        let _ = writeln!(std::io::stderr(), "\n{why}\n");
    });
}

fn postgres_admin_url() -> Option<String> {
    match std::env::var(POSTGRES_URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var(REQUIRE_POSTGRES_VAR).as_deref() != Ok("1"),
                "{REQUIRE_POSTGRES_VAR}=1 but {POSTGRES_URL_VAR} is not set"
            );
            static SAID: Once = Once::new();
            say_skipped(
                &SAID,
                &format!(
                    "Postgres tests SKIPPED: set {POSTGRES_URL_VAR} (e.g. \
                     postgres://postgres@127.0.0.1:5432/postgres) to run them."
                ),
            );
            None
        }
    }
}

async fn connect_admin(admin_url: &str) -> sqlx::PgConnection {
    use sqlx::Connection as _;
    sqlx::PgConnection::connect(admin_url)
        .await
        .expect("connect to the Postgres admin URL")
}

/// `admin_url` with its database name replaced by `name`.
pub fn database_url_for(admin_url: &str, name: &str) -> String {
    let (base, query) = admin_url
        .split_once('?')
        .map_or((admin_url, None), |(base, query)| (base, Some(query)));
    let authority_end = base.find("://").map_or(0, |i| i + 3);
    let server = match base[authority_end..].find('/') {
        Some(slash) => &base[..authority_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    }
}

/// The figment every test app starts from: the binary's, with a fixed key, quiet logs, and
/// `database_url`.
pub fn test_figment(database_url: &str) -> Figment {
    latch_walkthrough::figment()
        .merge(("secret_key", TEST_SECRET_KEY))
        .merge(("log_level", "off"))
        .merge(("database_url", database_url))
}

/// The app under test.
pub struct TestApp {
    pub client: Client,
    pub backend: Backend,
    /// The clock session deadlines are measured by, shared by every instance of the app:
    /// `advance` it instead of sleeping past a timeout.
    pub clock: latch::Clock,
    settings: Vec<(String, Value)>,
    // Declared last: dropped after the client has closed its pool.
    pub db: TestDb,
}

impl TestApp {
    /// The app on a fresh database with default settings; `None` when the backend is skipped.
    pub async fn spawn(backend: Backend) -> Option<Self> {
        Self::spawn_with(backend, &[]).await
    }

    /// The app with figment overrides, e.g. `("session.idle_timeout", json!(1))`.
    pub async fn spawn_with(backend: Backend, settings: &[(&str, Value)]) -> Option<Self> {
        let db = TestDb::create(backend).await?;
        let settings: Vec<_> = settings
            .iter()
            .map(|(key, value)| ((*key).to_owned(), value.clone()))
            .collect();
        let clock = latch::Clock::system();
        let client = launch(db.url(), &settings, &clock).await;
        Some(Self {
            client,
            backend,
            clock,
            settings,
            db,
        })
    }

    /// The app with extra routes mounted under `/t`, for tests of the session API itself.
    pub async fn spawn_mounting(backend: Backend, routes: Vec<rocket::Route>) -> Option<Self> {
        let db = TestDb::create(backend).await?;
        let clock = latch::Clock::system();
        let rocket = latch_walkthrough::rocket(figment_with(db.url(), &[]))
            .manage(clock.clone())
            .mount("/t", routes);
        let client = Client::tracked(rocket).await.expect("the app launches");
        Some(Self {
            client,
            backend,
            clock,
            settings: Vec::new(),
            db,
        })
    }

    /// Shuts this instance down and starts a new one on the same database and key (a restart).
    pub async fn restart(self) -> Self {
        let Self {
            client,
            backend,
            clock,
            settings,
            db,
        } = self;
        client.terminate().await;
        let client = launch(db.url(), &settings, &clock).await;
        Self {
            client,
            backend,
            clock,
            settings,
            db,
        }
    }

    /// Restarts on the same database with these settings added to the ones it had (e.g. a new
    /// `secret_key`).
    pub async fn restart_with(self, extra: &[(&str, Value)]) -> Self {
        let Self {
            client,
            backend,
            clock,
            mut settings,
            db,
        } = self;
        client.terminate().await;
        settings.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
        let client = launch(db.url(), &settings, &clock).await;
        Self {
            client,
            backend,
            clock,
            settings,
            db,
        }
    }

    /// A second instance of the app on the same database and key, as behind a load balancer.
    pub async fn second_instance(&self) -> Client {
        launch(self.db.url(), &self.settings, &self.clock).await
    }

    pub async fn get(&self, uri: &str) -> LocalResponse<'_> {
        self.client.get(uri.to_owned()).dispatch().await
    }

    /// A GET that presents exactly this raw (already encrypted) cookie value, bypassing the
    /// client's cookie jar, as a second browser tab or an attacker would.
    pub async fn get_with_cookie(&self, uri: &str, raw_cookie: &str) -> LocalResponse<'_> {
        self.client
            .get(uri.to_owned())
            .cookie(Cookie::new(COOKIE, raw_cookie.to_owned()))
            .dispatch()
            .await
    }

    pub async fn post_json(&self, uri: &str, body: &str) -> LocalResponse<'_> {
        self.client
            .post(uri.to_owned())
            .header(Header::new("Content-Type", "application/json"))
            .body(body)
            .dispatch()
            .await
    }

    pub async fn post_form(&self, uri: &str, body: &str) -> LocalResponse<'_> {
        self.client
            .post(uri.to_owned())
            .header(Header::new(
                "Content-Type",
                "application/x-www-form-urlencoded",
            ))
            .body(body)
            .dispatch()
            .await
    }

    /// The CSRF token the app puts in this browser's forms (its cookie stays in the jar). Read
    /// from the logout confirmation page, which touches no session.
    pub async fn csrf_token(&self) -> String {
        csrf_token_in(&read(self.get("/logout").await).await.1)
    }

    /// A form POST that carries this browser's CSRF token ahead of `body`.
    pub async fn post_form_with_token(&self, uri: &str, body: &str) -> LocalResponse<'_> {
        let token = self.csrf_token().await;
        let body = if body.is_empty() {
            format!("csrf_token={token}")
        } else {
            format!("csrf_token={token}&{body}")
        };
        self.post_form(uri, &body).await
    }

    /// Logs this browser out: the logout form, token included.
    pub async fn logout(&self) -> LocalResponse<'_> {
        self.post_form_with_token("/logout", "").await
    }

    /// Logs out the session whose raw (encrypted) cookie is given, with this browser's token.
    pub async fn logout_with_cookie(&self, raw_cookie: &str) -> LocalResponse<'_> {
        let token = self.csrf_token().await;
        self.client
            .post("/logout")
            .cookie(Cookie::new(COOKIE, raw_cookie.to_owned()))
            .header(Header::new(
                "Content-Type",
                "application/x-www-form-urlencoded",
            ))
            .body(format!("csrf_token={token}"))
            .dispatch()
            .await
    }

    /// The encrypted CSRF cookie the browser holds now, if any.
    pub fn raw_csrf_cookie(&self) -> Option<String> {
        self.client
            .cookies()
            .get(CSRF_COOKIE)
            .map(|cookie| cookie.value().to_owned())
    }

    /// The encrypted session cookie the client (the "browser") holds now, if any.
    pub fn raw_cookie(&self) -> Option<String> {
        self.client
            .cookies()
            .get(COOKIE)
            .map(|cookie| cookie.value().to_owned())
    }

    /// The session ID inside the browser's cookie, decrypted with the app's key.
    pub fn session_id(&self) -> Option<SessionId> {
        let cookie = self.client.cookies().get_private(COOKIE)?;
        SessionId::parse(cookie.value())
    }

    pub fn store(&self) -> Arc<dyn SessionStore> {
        let sessions = self
            .client
            .rocket()
            .state::<SessionManager>()
            .expect("SessionManager");
        Arc::clone(sessions.store())
    }

    /// Every row of the `sessions` table (see [`TestDb::rows`]).
    pub async fn rows(&self) -> Vec<SessionRow> {
        self.db.rows().await
    }

    /// The row of the session whose ID is `id`, if it exists (live or expired).
    pub async fn row_for(&self, id: &SessionId) -> Option<SessionRow> {
        let rows = self.rows().await;
        find_row(&rows, id).cloned()
    }

    /// The row of the session the browser holds now.
    pub async fn current_row(&self) -> Option<SessionRow> {
        let id = self.session_id()?;
        self.row_for(&id).await
    }
}

fn figment_with(database_url: &str, settings: &[(String, Value)]) -> Figment {
    let mut figment = test_figment(database_url);
    for (key, value) in settings {
        figment = figment.merge((key.as_str(), value.clone()));
    }
    figment
}

async fn launch(database_url: &str, settings: &[(String, Value)], clock: &latch::Clock) -> Client {
    let rocket =
        latch_walkthrough::rocket(figment_with(database_url, settings)).manage(clock.clone());
    Client::tracked(rocket).await.expect("the app launches")
}

/// A row of the `sessions` table, as [`TestDb::rows`] reads it (`data` parsed as JSON).
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRow {
    pub id_hash: Vec<u8>,
    pub data: Value,
    pub version: i64,
    pub created_at: i64,
    pub expires_at: i64,
    /// The user a signed-in session belongs to.
    pub user_id: Option<String>,
}

impl SessionRow {
    pub fn hash(&self) -> IdHash {
        IdHash(self.id_hash.as_slice().try_into().expect("32-byte hash"))
    }

    /// `id_hash` in lowercase hex, as Postgres' `encode(id_hash, 'hex')` and the change
    /// notifications write it.
    pub fn hex_hash(&self) -> String {
        self.id_hash
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }
}

/// The row filed under the session ID `id` among `rows`, if any.
pub fn find_row<'r>(rows: &'r [SessionRow], id: &SessionId) -> Option<&'r SessionRow> {
    let hash = id.hash();
    rows.iter().find(|row| row.id_hash == hash.as_bytes())
}

/// The value of the first `csrf_token` field in a page.
#[track_caller]
pub fn csrf_token_in(page: &str) -> String {
    let marker = r#"name="csrf_token" value=""#;
    let start = page.find(marker).expect("a form with a CSRF token") + marker.len();
    let end = page[start..].find('"').expect("the end of the token") + start;
    page[start..end].to_owned()
}

/// The response's status and body text.
pub async fn read(response: LocalResponse<'_>) -> (Status, String) {
    let status = response.status();
    (status, response.into_string().await.unwrap_or_default())
}

/// Asserts a response's status, showing its body on failure.
#[track_caller]
pub fn assert_status((status, body): &(Status, String), expected: Status) {
    assert_eq!(*status, expected, "unexpected status; body:\n{body}");
}

/// Every `Set-Cookie` header of a response but the CSRF token's (which pages set for their
/// forms; see `hardening.rs`).
pub fn set_cookies(response: &LocalResponse<'_>) -> Vec<String> {
    response
        .headers()
        .get("Set-Cookie")
        .filter(|cookie| !cookie.starts_with(&format!("{CSRF_COOKIE}=")))
        .map(str::to_owned)
        .collect()
}
