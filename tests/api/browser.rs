//! The walkthrough in a real headless Chromium, driven over chromedriver against the real binary:
//! counter, set / view / inspect / destroy, login, the HttpOnly cookie, the inspector's live
//! countdown under the Content-Security-Policy, and real accounts signed in from two browsers. The SQLite run saves a screenshot of each step into
//! `screenshots/` under cargo's target temp directory (by default `target/tmp/screenshots/`), so
//! a test run leaves the tracked files alone. To refresh the README's pictures in
//! `docs/screenshots/`, name that folder in `LATCH_SCREENSHOTS_DIR`:
//!
//! ```text
//! LATCH_SCREENSHOTS_DIR=docs/screenshots cargo test --test api browser
//! ```

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

use fantoccini::cookies::Cookie;
use fantoccini::wd::Capabilities;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

use crate::helpers::{Backend, COOKIE, TestDb, backend_tests};
use crate::server::{Server, free_port};

/// Set to `1` to make a missing chromedriver or Chromium a failure instead of a skip (CI does).
const REQUIRE_BROWSER_VAR: &str = "LATCH_REQUIRE_BROWSER";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// A folder to save the screenshots in instead of the default (see the module docs); a relative
/// path is taken from the package root, which is also where cargo runs the tests.
const SCREENSHOTS_DIR_VAR: &str = "LATCH_SCREENSHOTS_DIR";
/// How long a page may take to show what a step expects; generous because the suite runs
/// several browsers at once on a small machine.
const PAGE_TIMEOUT: Duration = Duration::from_secs(20);

backend_tests!(
    the_counter_counts_three_visits_in_a_browser,
    a_name_is_set_viewed_and_destroyed_by_clicking_through,
    logging_in_with_the_form_greets_and_changes_the_cookie,
    page_scripts_cannot_read_the_session_cookie,
    the_inspector_counts_down_live_with_its_script,
    one_browser_signs_another_out_from_the_device_list,
);

async fn the_counter_counts_three_visits_in_a_browser(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let Some(browser) = Browser::launch(backend).await else {
        return;
    };
    let server = Server::start(db.url(), &[]);

    browser.goto(&server.url("/")).await;
    let first = browser.wait_for_page("/", "Welcome").await;
    browser.goto(&server.url("/")).await;
    let second = browser.wait_for_page("/", "You visited").await;
    browser.goto(&server.url("/")).await;
    let third = browser.wait_for_page("/", "You visited").await;
    browser.screenshot("01-counter.png").await;

    assert!(
        first.contains("Welcome to this page for the first time!"),
        "{first}"
    );
    assert!(second.contains("You visited this page 2 times"), "{second}");
    assert!(third.contains("You visited this page 3 times"), "{third}");
    browser.close().await;
}

async fn a_name_is_set_viewed_and_destroyed_by_clicking_through(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    // The walkthrough needs no script: logging out is a plain form.
    let Some(browser) =
        Browser::launch_with(backend, &["--blink-settings=scriptEnabled=false"]).await
    else {
        return;
    };
    let server = Server::start(db.url(), &[]);

    browser.goto(&server.url("/user/Ada")).await;
    let set = browser.wait_for_page("/user/Ada", "Session set").await;
    browser.screenshot("02-set-name.png").await;
    let stored = db.rows().await;
    browser.click_link("View here").await;
    let view = browser
        .wait_for_page("/user", "This name came back from your session")
        .await;
    let heading = browser.heading().await;
    browser.screenshot("03-view.png").await;
    // The header leads to the inspector: the same session, from the cookie to the row.
    browser.click_link("Inspect session").await;
    let inspected = browser
        .wait_for_page("/session", "What your browser holds")
        .await;
    browser.screenshot("08-session-inspector.png").await;
    let held = browser
        .session_cookie()
        .await
        .expect("the browser holds the session cookie");
    browser.click_link("See it").await;
    browser
        .wait_for_page("/user", "This name came back from your session")
        .await;
    browser
        .click(r#"main form[action="/logout"] button"#, "the Logout button")
        .await;
    let logout = browser.wait_for_page("/logout", "logged out!").await;
    browser.screenshot("04-logout.png").await;
    let after_logout = db.rows().await;
    let cookie_after_logout = browser.session_cookie().await;
    browser.click_link("Check session").await;
    let check = browser.wait_for_page("/user", "user logged out!").await;
    browser.screenshot("05-logged-out.png").await;

    assert!(
        set.contains("Stored the name Ada in your session."),
        "{set}"
    );
    assert!(
        stored.len() == 1 && stored[0].data.to_string().contains("Ada"),
        "the name is stored in one row: {stored:?}"
    );
    assert!(view.contains("Logout"), "{view}");
    assert_eq!(heading, "Ada");
    assert!(inspected.contains(r#""name": "Ada""#), "{inspected}");
    assert!(
        inspected.contains(&format!("{}…", &held.value()[..6])),
        "the start of the cookie as the browser holds it: {inspected}"
    );
    assert!(!inspected.contains(held.value()), "{inspected}");
    assert!(
        inspected.contains(" ago)"),
        "server-rendered times: {inspected}"
    );
    assert!(logout.contains("Check session"), "{logout}");
    assert!(
        !after_logout
            .iter()
            .any(|row| row.data.to_string().contains("Ada")),
        "no row holds the name after logout: {after_logout:?}"
    );
    assert!(
        after_logout.is_empty(),
        "the fresh database has no session left: {after_logout:?}"
    );
    assert!(
        cookie_after_logout.is_none(),
        "the browser dropped the cookie: {cookie_after_logout:?}"
    );
    assert!(check.contains("user logged out!"), "{check}");
    browser.close().await;
}

/// Registers in one browser, signs in to the same account from a second, and signs the second
/// out from the first one's device list: its next page is the sign-in form.
async fn one_browser_signs_another_out_from_the_device_list(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let Some(laptop) = Browser::launch(backend).await else {
        return;
    };
    let Some(phone) = Browser::launch(backend).await else {
        return;
    };
    let server = Server::start(db.url(), &[]);
    let password = "correct horse battery";

    laptop.goto(&server.url("/account/register")).await;
    laptop
        .wait_for_page("/account/register", "Create an account")
        .await;
    laptop.fill("input[name=username]", "Ada").await;
    laptop.fill("input[name=password]", password).await;
    laptop
        .click(
            r#"form[action="/account/register"] button"#,
            "Create account",
        )
        .await;
    laptop
        .wait_for_page("/account/sessions", "Welcome, Ada")
        .await;

    phone.goto(&server.url("/account/login")).await;
    phone.wait_for_page("/account/login", "Sign in").await;
    phone.fill("input[name=username]", "ada").await;
    phone.fill("input[name=password]", password).await;
    phone
        .click(r#"form[action="/account/login"] button"#, "Sign in")
        .await;
    phone
        .wait_for_page("/account/sessions", "Signed in as Ada.")
        .await;

    laptop.goto(&server.url("/account/sessions")).await;
    let list = laptop
        .wait_for_page("/account/sessions", "This device")
        .await;
    // Each row names its browser as people do, with the raw User-Agent on hover.
    assert_eq!(
        list.matches("Chrome on Linux").count(),
        2,
        "two browsers: {list}"
    );
    let agents = laptop.attributes("td.browser span", "title").await;
    assert_eq!(
        agents
            .iter()
            .filter(|agent| agent.contains("HeadlessChrome"))
            .count(),
        2,
        "two browsers: {agents:?}"
    );
    laptop.screenshot("09-devices.png").await;
    laptop
        .click(
            r#"form[action="/account/sessions/revoke"] button"#,
            "the other device's Sign out",
        )
        .await;
    laptop
        .wait_for_page("/account/sessions", "That device is signed out.")
        .await;

    phone.goto(&server.url("/account/sessions")).await;
    phone.wait_for_page("/account/login", "Sign in").await;
    // Scrolled to the part that is new once a session is signed in.
    laptop.goto(&server.url("/session#user")).await;
    laptop.wait_for_page("/session", "Who it belongs to").await;
    laptop.screenshot("10-inspector-signed-in.png").await;
    laptop.close().await;
    phone.close().await;
}

async fn logging_in_with_the_form_greets_and_changes_the_cookie(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let Some(browser) = Browser::launch(backend).await else {
        return;
    };
    let server = Server::start(db.url(), &[]);
    // A visit to the counter starts a session, so there is a cookie for the login to replace.
    browser.goto(&server.url("/")).await;
    browser.wait_for_page("/", "Welcome").await;
    let before = browser
        .session_cookie()
        .await
        .expect("the counter set a session cookie");

    browser.goto(&server.url("/login")).await;
    browser.wait_for_page("/login", "Log in").await;
    browser
        .client
        .find(Locator::Css("input[name=username]"))
        .await
        .expect("the login form has a username field")
        .send_keys("Grace")
        .await
        .expect("type the username");
    browser.screenshot("06-login.png").await;
    browser
        .client
        .find(Locator::Css(
            r#"main form[action="/login"] button[type=submit]"#,
        ))
        .await
        .expect("the login form has a submit button")
        .click()
        .await
        .expect("submit the login form");
    let greeting = browser.wait_for_page("/", "Hello Grace").await;
    browser.screenshot("07-greeting.png").await;
    let after = browser
        .session_cookie()
        .await
        .expect("a session cookie after login");
    let rows = db.rows().await;

    assert!(greeting.contains("Hello Grace"), "{greeting}");
    // The data moved to the new ID: this is the session's second visit to the counter.
    assert!(
        greeting.contains("You visited this page 2 times"),
        "{greeting}"
    );
    // Encrypted values change on every reseal; what matters is what the old cookie can do.
    let with_old_cookie = crate::server::http_client()
        .get(server.url("/user"))
        .header(
            reqwest::header::COOKIE,
            format!("{COOKIE}={}", before.value()),
        )
        .send()
        .await
        .expect("GET /user with the pre-login cookie")
        .text()
        .await
        .expect("the page");
    assert!(
        with_old_cookie.contains("user logged out!"),
        "the pre-login cookie opens no session: {with_old_cookie}"
    );
    let with_new_cookie = crate::server::http_client()
        .get(server.url("/user"))
        .header(
            reqwest::header::COOKIE,
            format!("{COOKIE}={}", after.value()),
        )
        .send()
        .await
        .expect("GET /user with the post-login cookie")
        .text()
        .await
        .expect("the page");
    assert!(
        with_new_cookie.contains("<h1>Grace</h1>"),
        "the new cookie opens the signed-in session: {with_new_cookie}"
    );
    assert!(
        rows.len() == 1 && rows[0].data.to_string().contains("Grace"),
        "one row, under the new ID, holds the name: {rows:?}"
    );
    browser.close().await;
}

async fn page_scripts_cannot_read_the_session_cookie(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let Some(browser) = Browser::launch(backend).await else {
        return;
    };
    let server = Server::start(db.url(), &[]);
    browser.goto(&server.url("/")).await;
    browser.wait_for_page("/", "Welcome").await;

    // A cookie a script may see, so an empty `document.cookie` cannot pass by accident.
    let script_view = browser
        .client
        .execute(
            "document.cookie = 'probe=1; path=/'; return document.cookie;",
            vec![],
        )
        .await
        .expect("run a script in the page");
    let webdriver_view = browser.session_cookie().await;

    let script_view = script_view.as_str().expect("document.cookie is a string");
    assert!(script_view.contains("probe=1"), "{script_view:?}");
    assert!(!script_view.contains("session="), "{script_view:?}");
    let cookie = webdriver_view.expect("WebDriver sees the session cookie");
    assert!(!cookie.value().is_empty());
    assert_eq!(cookie.http_only(), Some(true), "{cookie:?}");
    browser.close().await;
}

async fn the_inspector_counts_down_live_with_its_script(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let Some(browser) = Browser::launch(backend).await else {
        return;
    };
    let server = Server::start(db.url(), &[]);
    browser.goto(&server.url("/user/Ada")).await;
    browser.wait_for_page("/user/Ada", "Session set").await;

    browser.goto(&server.url("/session")).await;
    browser
        .wait_for_page("/session", "What your browser holds")
        .await;
    // The first clock on the page: how long ago the session was created.
    let first = browser.text("[data-unix-ms]").await;
    // The script runs under the policy (`script-src 'self'`) if the clock moves on its own.
    let deadline = Instant::now() + PAGE_TIMEOUT;
    let mut now = browser.text("[data-unix-ms]").await;
    while now == first && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        now = browser.text("[data-unix-ms]").await;
    }

    assert!(first.ends_with(" ago"), "{first}");
    assert_ne!(now, first, "the countdown script did not run");
    assert!(now.ends_with(" s ago"), "{now}");
    browser.close().await;
}

/// A headless Chromium under its own chromedriver, on its own port and profile.
struct Browser {
    client: Client,
    /// Where screenshots go on the SQLite run ([`screenshots_dir`]); nowhere on the other.
    screenshots: Option<PathBuf>,
    // Declared last: the driver and the browser die before their profile directory is removed.
    _driver: Chromedriver,
}

impl Browser {
    /// A fresh browser, or `None` (after saying so) when chromedriver or Chromium is missing.
    async fn launch(backend: Backend) -> Option<Self> {
        Self::launch_with(backend, &[]).await
    }

    /// [`launch`](Self::launch) with extra Chromium flags.
    async fn launch_with(backend: Backend, flags: &[&str]) -> Option<Self> {
        if !browser_installed() {
            return None;
        }
        let driver = Chromedriver::start();
        let profile = driver.profile.path().display().to_string();
        let mut args = json!([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            // This machine's network is closed: no background calls home.
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1100,900",
            format!("--user-data-dir={profile}"),
        ]);
        if let Some(list) = args.as_array_mut() {
            list.extend(flags.iter().map(|flag| json!(flag)));
        }
        let capabilities: Capabilities = serde_json::from_value(json!({
            "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
        }))
        .expect("the capabilities are a JSON object");
        // chromedriver speaks plain HTTP on loopback, so the connector needs no TLS.
        let mut builder = ClientBuilder::new(HttpConnector::new());
        builder.capabilities(capabilities);
        let webdriver = format!("http://127.0.0.1:{}", driver.port);
        // A browser start can fail when the machine is busy; one more try, and say why.
        let client = match builder.connect(&webdriver).await {
            Ok(client) => client,
            Err(error) => {
                let _ = writeln!(
                    std::io::stderr(),
                    "starting Chromium failed, trying once more: {error}"
                );
                builder
                    .connect(&webdriver)
                    .await
                    .expect("start a Chromium session through chromedriver")
            }
        };
        let screenshots = (backend == Backend::Sqlite).then(screenshots_dir);
        Some(Self {
            client,
            screenshots,
            _driver: driver,
        })
    }

    async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|error| panic!("open {url}: {error}"));
    }

    /// Clicks the element `css` finds (`what` names it in failures).
    async fn click(&self, css: &str, what: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|error| panic!("find {what}: {error}"))
            .click()
            .await
            .unwrap_or_else(|error| panic!("click {what}: {error}"));
    }

    /// Types `text` into the field `css` finds.
    async fn fill(&self, css: &str, text: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|error| panic!("find {css}: {error}"))
            .send_keys(text)
            .await
            .unwrap_or_else(|error| panic!("type into {css}: {error}"));
    }

    /// The attribute `name` of every element `css` finds (that has it).
    async fn attributes(&self, css: &str, name: &str) -> Vec<String> {
        let elements = self
            .client
            .find_all(Locator::Css(css))
            .await
            .unwrap_or_else(|error| panic!("find {css}: {error}"));
        let mut values = Vec::new();
        for element in elements {
            let value = element
                .attr(name)
                .await
                .unwrap_or_else(|error| panic!("read {name} of {css}: {error}"));
            values.extend(value);
        }
        values
    }

    async fn click_link(&self, text: &str) {
        self.client
            .find(Locator::LinkText(text))
            .await
            .unwrap_or_else(|error| panic!("find the link {text:?}: {error}"))
            .click()
            .await
            .unwrap_or_else(|error| panic!("click the link {text:?}: {error}"));
    }

    /// Waits until the browser is on `path` and the page's main text contains `needle`, and
    /// returns that text. Polls, because a click's navigation may still be under way.
    async fn wait_for_page(&self, path: &str, needle: &str) -> String {
        let deadline = Instant::now() + PAGE_TIMEOUT;
        loop {
            let url = self.client.current_url().await.ok();
            let text = match self.client.find(Locator::Css("main")).await {
                Ok(main) => main.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if url.as_ref().is_some_and(|url| url.path() == path) && text.contains(needle) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "expected {path} showing {needle:?}; the browser is on {url:?} showing:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The text of the first element `css` finds.
    async fn text(&self, css: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|error| panic!("find {css}: {error}"))
            .text()
            .await
            .unwrap_or_else(|error| panic!("read {css}: {error}"))
    }

    /// The page's `<h1>`.
    async fn heading(&self) -> String {
        self.client
            .find(Locator::Css("main h1"))
            .await
            .expect("the page has a heading")
            .text()
            .await
            .expect("read the heading")
    }

    /// The session cookie as the browser holds it (WebDriver sees HttpOnly cookies too).
    async fn session_cookie(&self) -> Option<Cookie<'static>> {
        self.client
            .get_all_cookies()
            .await
            .expect("read the browser's cookies")
            .into_iter()
            .find(|cookie| cookie.name() == COOKIE)
    }

    /// Saves the viewport as `<name>` in [`screenshots_dir`] on the SQLite run.
    async fn screenshot(&self, name: &str) {
        let Some(dir) = &self.screenshots else {
            return;
        };
        let png = self.client.screenshot().await.expect("take a screenshot");
        std::fs::create_dir_all(dir)
            .unwrap_or_else(|error| panic!("create {}: {error}", dir.display()));
        let path = dir.join(name);
        std::fs::write(&path, png)
            .unwrap_or_else(|error| panic!("save {}: {error}", path.display()));
    }

    /// Ends the WebDriver session, which quits Chromium; the driver goes when `self` drops.
    async fn close(self) {
        let Self {
            client, _driver, ..
        } = self;
        client.close().await.expect("end the browser session");
        drop(_driver);
    }
}

/// A chromedriver process in its own process group, with a temporary Chromium profile. Dropping
/// it kills the whole group, so a failed test leaves no driver or browser behind.
struct Chromedriver {
    child: Child,
    port: u16,
    profile: tempfile::TempDir,
}

impl Chromedriver {
    /// Starts chromedriver on a free port; if another process grabbed that port in the meantime
    /// (tests run in parallel), chromedriver exits and we try another.
    fn start() -> Self {
        for _ in 0..3 {
            let port = free_port();
            let child = Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                // Chromium inherits the group, so one kill reaches the driver and every browser.
                .process_group(0)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start chromedriver");
            let mut driver = Self {
                child,
                port,
                profile: tempfile::tempdir().expect("temp dir for the Chromium profile"),
            };
            if driver.wait_until_ready() {
                return driver;
            }
        }
        panic!("chromedriver did not start on any of 3 free ports");
    }

    /// Whether chromedriver answered `/status` as ready; false if it exited (port taken).
    fn wait_until_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.is_ready() {
                return true;
            }
            if !matches!(self.child.try_wait(), Ok(None)) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "chromedriver was not ready on port {} within 30 s",
            self.port
        );
    }

    /// Asks `GET /status`, so that another server on the port is not taken for chromedriver.
    fn is_ready(&self) -> bool {
        let address = SocketAddr::from(([127, 0, 0, 1], self.port));
        let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_millis(200))
        else {
            return false;
        };
        let request = "GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
        if stream
            .set_read_timeout(Some(Duration::from_secs(2)))
            .is_err()
            || stream.write_all(request.as_bytes()).is_err()
        {
            return false;
        }
        // chromedriver keeps the connection open, so read until the answer is in, not to EOF.
        let mut response = Vec::new();
        let mut chunk = [0; 4096];
        while let Ok(read @ 1..) = stream.read(&mut chunk) {
            response.extend_from_slice(&chunk[..read]);
            if String::from_utf8_lossy(&response).contains(r#""ready":true"#) {
                return true;
            }
        }
        false
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        // The group's ID is the driver's PID (`process_group(0)`); `-PID` names the group.
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{}", self.child.id())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether chromedriver and Chromium are installed; if not, says the browser tests are skipped,
/// or fails when `LATCH_REQUIRE_BROWSER=1`.
fn browser_installed() -> bool {
    let missing: Vec<_> = [CHROMEDRIVER, CHROMIUM]
        .into_iter()
        .filter(|path| !Path::new(path).exists())
        .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var(REQUIRE_BROWSER_VAR).as_deref() != Ok("1"),
        "{REQUIRE_BROWSER_VAR}=1 but {missing:?} not installed"
    );
    static SAY_ONCE: Once = Once::new();
    SAY_ONCE.call_once(|| {
        // Straight to stderr: the test harness would swallow eprintln! from a passing test.
        let _ = writeln!(
            std::io::stderr(),
            "\nBrowser tests SKIPPED: {missing:?} not found (apt-get install chromium \
             chromium-driver).\n"
        );
    });
    false
}

/// Where the screenshots go: `$LATCH_SCREENSHOTS_DIR` when it is set (a relative path from the
/// package root, e.g. `docs/screenshots` for the README's pictures), else `screenshots/` in
/// cargo's temp directory for integration tests (`target/tmp/`, or under `$CARGO_TARGET_DIR`),
/// which is not tracked.
fn screenshots_dir() -> PathBuf {
    match std::env::var_os(SCREENSHOTS_DIR_VAR) {
        // `join` keeps an absolute path as it is.
        Some(dir) if !dir.is_empty() => Path::new(env!("CARGO_MANIFEST_DIR")).join(dir),
        _ => Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots"),
    }
}
