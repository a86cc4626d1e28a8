//! `Server`: the real `latch` binary as a child process on a free loopback port, for tests that
//! need a real socket (a browser, `kill -9`, two processes sharing a database).

use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use latch::SessionId;

use crate::helpers::{COOKIE, TEST_SECRET_KEY};

/// A running `latch` process. Killed (SIGKILL) when dropped.
///
/// Its stdout and stderr (Rocket logs to stdout) go to one log file that outlives restarts, so a
/// test can read what every run of the process said.
pub struct Server {
    child: Child,
    pub port: u16,
    database_url: String,
    env: Vec<(String, String)>,
    log_dir: tempfile::TempDir,
}

impl Server {
    /// Starts the binary against `database_url` with the test secret key and any extra
    /// environment (e.g. `("ROCKET_SESSION", "{purge_interval=1}")`), and waits until it answers.
    pub fn start(database_url: &str, env: &[(&str, &str)]) -> Self {
        let env: Vec<_> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let log_dir = tempfile::tempdir().expect("a temp dir for the server log");
        let port = free_port();
        let child = spawn(port, database_url, &env, &log_dir.path().join(LOG));
        let mut server = Self {
            child,
            port,
            database_url: database_url.to_owned(),
            env,
            log_dir,
        };
        server.wait_until_listening();
        server
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// SIGKILL, no shutdown of any kind: what a crash or `kill -9` does.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kills the process and starts the binary again on the same port, database and settings.
    pub fn restart(&mut self) {
        self.kill();
        self.child = spawn(self.port, &self.database_url, &self.env, &self.log_path());
        self.wait_until_listening();
    }

    /// The process id, to read its memory from `/proc`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Everything the process (and any earlier run of it, before a restart) has logged so far.
    pub fn log(&self) -> String {
        std::fs::read(self.log_path())
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.log_dir.path().join(LOG)
    }

    fn wait_until_listening(&mut self) {
        let address = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
                return;
            }
            assert!(
                self.is_running(),
                "the latch binary exited during startup; its log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "the latch binary did not listen on port {} within 30 s; its log:\n{}",
            self.port,
            self.log()
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

const LOG: &str = "latch.log";

/// Starts the binary on `port`, appending its stdout and stderr to `log`.
fn spawn(port: u16, database_url: &str, env: &[(String, String)], log: &Path) -> Child {
    let out = File::options()
        .create(true)
        .append(true)
        .open(log)
        .expect("open the server log");
    let err = out.try_clone().expect("clone the log handle");
    Command::new(env!("CARGO_BIN_EXE_latch"))
        // Templates and static files are found relative to the working directory.
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")))
        .env("DATABASE_URL", database_url)
        .env("ROCKET_SECRET_KEY", TEST_SECRET_KEY)
        .env("ROCKET_ADDRESS", "127.0.0.1")
        .env("ROCKET_PORT", port.to_string())
        .env("ROCKET_LOG_LEVEL", "critical")
        .env("ROCKET_CLI_COLORS", "false")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("start the latch binary")
}

/// A port that was free a moment ago (the OS picks it; the listener is closed at once).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

/// A plain HTTP client for `Server`: no proxy, no redirects, no connection reuse (a killed server
/// leaves dead pooled connections behind), and a timeout so no request hangs a test.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(20))
        .build()
        .expect("an HTTP client")
}

/// Logs out the session in `session` (a raw `session` cookie) on the server at `base` as a
/// browser does: the confirmation page, shown to that session, carries its CSRF token, and the
/// form posts it back.
pub async fn logout(http: &reqwest::Client, base: &str, session: &str) -> (u16, String) {
    let page = http
        .get(format!("{base}/logout"))
        .header(reqwest::header::COOKIE, format!("{COOKIE}={session}"))
        .send()
        .await
        .expect("GET /logout");
    let token = crate::helpers::csrf_token_in(&page.text().await.expect("the page"));
    post_logout(http, base, session, &token).await
}

/// Posts the logout form with `token` for the session in `session`: the status and the page.
pub async fn post_logout(
    http: &reqwest::Client,
    base: &str,
    session: &str,
    token: &str,
) -> (u16, String) {
    let response = http
        .post(format!("{base}/logout"))
        .header(reqwest::header::COOKIE, format!("{COOKIE}={session}"))
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(format!("csrf_token={token}"))
        .send()
        .await
        .expect("POST /logout");
    let status = response.status().as_u16();
    (status, response.text().await.expect("the page"))
}

/// The value of the cookie `name` a response sets, if it sets one.
pub fn cookie_named(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .filter_map(|value| value.split(';').next()?.split_once('='))
        .find(|(cookie, _)| cookie.trim() == name)
        .map(|(_, value)| value.trim().to_owned())
}

/// The value of the `session` cookie a response sets, if it sets one (empty when it removes it).
pub fn session_cookie(response: &reqwest::Response) -> Option<String> {
    cookie_named(response, COOKIE)
}

/// The session ID sealed in a `session` cookie value as sent over HTTP (percent-encoded), opened
/// with the test secret key as Rocket does (the key material is expanded into a cookie `Key`).
pub fn session_id_in(raw_cookie: &str) -> Option<SessionId> {
    use base64::Engine as _;
    use rocket::http::private::cookie::{Cookie, CookieJar, Key};

    let material = base64::engine::general_purpose::STANDARD
        .decode(TEST_SECRET_KEY)
        .expect("the test key is base64");
    let mut jar = CookieJar::new();
    jar.add_original(Cookie::parse_encoded(format!("{COOKIE}={raw_cookie}")).ok()?);
    let sealed = jar.private(&Key::derive_from(&material)).get(COOKIE)?;
    SessionId::parse(sealed.value())
}
