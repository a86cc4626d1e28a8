//! Launching the real binary: a bad setting, an unreachable database or a port in use is one
//! `error:` line and exit status 1, never a panic; a good launch serves from any working
//! directory; SIGTERM and SIGINT under load exit 0 with every answered write stored.

use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::future::join_all;

use crate::helpers::{Backend, TEST_SECRET_KEY, TestDb, backend_tests};
use crate::server::{Server, free_port, http_client};

backend_tests!(sigterm_under_load_exits_zero_and_every_answered_write_is_stored);

/// How long any run of the binary may take to start, or to exit when it should, before the test
/// kills it and fails.
const PATIENCE: Duration = Duration::from_secs(30);

/// How long the binary may take to exit after SIGTERM or SIGINT: Rocket's grace (2 s) and mercy
/// (3 s), and some room.
const SHUTDOWN_LIMIT: Duration = Duration::from_secs(8);

/// Concurrent request loops in the shutdown tests.
const LOOPS: usize = 16;

/// `latch` as every test here runs it: from `cwd`, on `database_url`, on 127.0.0.1:`port`, with
/// the test key and quiet, plain logs, and none of the test runner's own `ROCKET_*` settings.
pub(crate) fn latch(cwd: &Path, database_url: &str, port: u16) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_latch"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("ROCKET_") {
            command.env_remove(key);
        }
    }
    command
        .current_dir(cwd)
        .env("DATABASE_URL", database_url)
        .env("ROCKET_SECRET_KEY", TEST_SECRET_KEY)
        .env("ROCKET_ADDRESS", "127.0.0.1")
        .env("ROCKET_PORT", port.to_string())
        .env("ROCKET_LOG_LEVEL", "critical")
        .env("ROCKET_CLI_COLORS", "false")
        .stdin(Stdio::null());
    command
}

/// An empty working directory, a SQLite file elsewhere, and a port that was free.
struct Scratch {
    cwd: tempfile::TempDir,
    data: tempfile::TempDir,
    port: u16,
}

impl Scratch {
    fn new() -> Self {
        Self {
            cwd: tempfile::tempdir().expect("a temp dir to run in"),
            data: tempfile::tempdir().expect("a temp dir for the database"),
            port: free_port(),
        }
    }

    /// An absolute `sqlite://` URL, outside the working directory.
    fn database_url(&self) -> String {
        format!("sqlite://{}", self.data.path().join("latch.db").display())
    }

    /// `latch` from the empty directory, on the scratch database and port.
    fn latch(&self) -> Command {
        latch(self.cwd.path(), &self.database_url(), self.port)
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

/// A run of the binary, its stdout and stderr each in a file. Killed (SIGKILL) when dropped.
struct Process {
    child: Child,
    logs: tempfile::TempDir,
}

impl Process {
    fn spawn(mut command: Command) -> Self {
        let logs = tempfile::tempdir().expect("a temp dir for the logs");
        let stdout = File::create(logs.path().join("stdout")).expect("create the stdout log");
        let stderr = File::create(logs.path().join("stderr")).expect("create the stderr log");
        let child = command
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .expect("start the latch binary");
        Self { child, logs }
    }

    fn stderr(&self) -> String {
        self.read("stderr")
    }

    /// Everything the process wrote, both streams, for assertions and failure messages.
    fn output(&self) -> String {
        format!(
            "--- stdout ---\n{}--- stderr ---\n{}",
            self.read("stdout"),
            self.read("stderr")
        )
    }

    fn read(&self, name: &str) -> String {
        std::fs::read(self.logs.path().join(name))
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }

    /// Waits up to `within` for the process to exit; `None`, after killing it, if it does not.
    fn exit_within(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            match self.child.try_wait().expect("poll the latch process") {
                Some(status) => return Some(status),
                None if Instant::now() >= deadline => {
                    self.kill();
                    return None;
                }
                None => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    /// Waits until the process accepts connections on `port`; fails if it exits or is too slow.
    fn wait_until_listening(&mut self, port: u16) {
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
                return;
            }
            if let Some(status) = self.child.try_wait().expect("poll the latch process") {
                panic!(
                    "the latch binary exited during startup ({status}):\n{}",
                    self.output()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill();
        panic!(
            "the latch binary did not listen on port {port} within {PATIENCE:?}:\n{}",
            self.output()
        );
    }

    /// Sends `signal` (`TERM`, `INT`) with `kill`.
    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal}: {status}");
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `command` and asserts the launch is refused as an operator needs it: exit status 1,
/// exactly one line on stderr, `error: ...` containing each of `says`, and no panic or backtrace
/// in anything it printed. Returns that line.
#[track_caller]
pub(crate) fn assert_refused(command: Command, says: &[&str]) -> String {
    let mut process = Process::spawn(command);
    let status = process.exit_within(PATIENCE);
    let output = process.output();
    let Some(status) = status else {
        panic!("still running after {PATIENCE:?} (killed):\n{output}");
    };
    assert_eq!(status.code(), Some(1), "exit status {status}:\n{output}");
    let stderr = process.stderr();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "exactly one line on stderr:\n{output}");
    let line = lines[0];
    let problem = line.strip_prefix("error:").map(str::trim);
    assert!(
        problem.is_some_and(|problem| !problem.is_empty()),
        "the line is `error: <the problem>`:\n{output}"
    );
    for word in says {
        assert!(line.contains(word), "the line names `{word}`: {line}");
    }
    let lowercase = output.to_lowercase();
    for word in ["panicked", "backtrace"] {
        assert!(!lowercase.contains(word), "no `{word}`:\n{output}");
    }
    line.to_owned()
}

#[test]
fn bad_settings_are_refused_with_one_line_naming_the_key() {
    // (variable, value, what the error line must name)
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "ROCKET_SESSION",
            "{idle_timeout=0}",
            &["session.idle_timeout"],
        ),
        // Three million years: far past what the deadline arithmetic can hold.
        (
            "ROCKET_SESSION",
            "{idle_timeout=100000000000000}",
            &["session.idle_timeout"],
        ),
        (
            "ROCKET_SESSION",
            "{touch_interval=60,idle_timeout=60}",
            &["touch_interval"],
        ),
        (
            "ROCKET_DATABASE_MAX_CONNECTIONS",
            "0",
            &["database_max_connections"],
        ),
        ("ROCKET_DATABASE_TIMEOUT", "0", &["database_timeout"]),
        // Tokio panics on zero threads of either kind.
        ("ROCKET_WORKERS", "0", &["workers"]),
        ("ROCKET_MAX_BLOCKING", "0", &["max_blocking"]),
        // This binary has no TLS: it would serve plain HTTP without a word.
        (
            "ROCKET_TLS",
            "{certs=\"cert.pem\",key=\"key.pem\"}",
            &["tls", "without TLS"],
        ),
        (
            "ROCKET_ACCOUNTS",
            "{max_registrations_per_address=0}",
            &["accounts.max_registrations_per_address"],
        ),
        (
            "ROCKET_ACCOUNTS",
            "{max_concurrent_hashes=0}",
            &["accounts.max_concurrent_hashes"],
        ),
        ("ROCKET_DATABSE_URL", "x", &["databse_url"]),
        (
            "DATABASE_URL",
            "mysql://localhost/x",
            &["sqlite:", "postgres:"],
        ),
    ];
    for (variable, value, says) in cases {
        let scratch = Scratch::new();
        let mut command = scratch.latch();
        command.env(variable, value);

        assert_refused(command, says);
    }
}

#[test]
fn an_unreachable_postgres_is_one_error_line_not_a_panic() {
    let scratch = Scratch::new();
    let mut command = scratch.latch();
    command
        .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/x")
        .env("ROCKET_DATABASE_TIMEOUT", "2");

    assert_refused(command, &["could not connect"]);
}

#[test]
fn a_release_launch_without_a_secret_key_is_refused_naming_the_key() {
    let scratch = Scratch::new();
    let mut command = scratch.latch();
    command
        .env("ROCKET_PROFILE", "release")
        .env_remove("ROCKET_SECRET_KEY");

    assert_refused(command, &["secret_key"]);
}

#[test]
fn a_port_in_use_is_refused_naming_the_port() {
    let scratch = Scratch::new();
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let port = taken.local_addr().expect("the bound address").port();
    let mut command = scratch.latch();
    command.env("ROCKET_PORT", port.to_string());

    assert_refused(command, &[&port.to_string()]);
    drop(taken);
}

#[test]
fn an_operator_command_with_a_bad_setting_is_refused_the_same_way() {
    for (variable, value, says) in [
        ("ROCKET_SESSION", "{idle_timeout=0}", "session.idle_timeout"),
        ("ROCKET_WORKERS", "0", "workers"),
        ("ROCKET_MAX_BLOCKING", "0", "max_blocking"),
    ] {
        let scratch = Scratch::new();
        let mut command = scratch.latch();
        command.args(["sessions", "stats"]).env(variable, value);

        assert_refused(command, &[says]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readmes_example_session_settings_launch_and_serve() {
    assert_launches_and_serves("{idle_timeout=60,purge_interval=5}").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_second_idle_timeout_launches_and_serves() {
    assert_launches_and_serves("{idle_timeout=2}").await;
}

/// Launches with `ROCKET_SESSION=session` as the README does, from the repository next to its
/// Rocket.toml (`Server` runs there), and asserts `GET /` answers 200.
async fn assert_launches_and_serves(session: &str) {
    let scratch = Scratch::new();
    let server = Server::start(&scratch.database_url(), &[("ROCKET_SESSION", session)]);
    let url = server.url("/");

    let response = http_client()
        .get(&url)
        .send()
        .await
        .unwrap_or_else(|error| panic!("GET {url}: {error}"));

    let status = response.status();
    let body = response.text().await.expect("the body");
    assert_eq!(status, 200, "GET {url}: {body}\n{}", server.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_do_not_name_the_server_unless_ident_is_set() {
    assert_eq!(server_header(&[]).await, None, "a Server header");
    assert_eq!(
        server_header(&[("ROCKET_IDENT", "latch")]).await.as_deref(),
        Some("latch")
    );
}

/// The `Server` header of `GET /` from the binary started with `env`.
async fn server_header(env: &[(&str, &str)]) -> Option<String> {
    let scratch = Scratch::new();
    let mut command = scratch.latch();
    command.envs(env.iter().copied());
    let mut process = Process::spawn(command);
    process.wait_until_listening(scratch.port);
    let home = http_client()
        .get(scratch.url("/"))
        .send()
        .await
        .expect("GET /");
    assert_eq!(home.status(), 200, "{}", process.output());
    home.headers()
        .get(reqwest::header::SERVER)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_pages_and_stylesheet_from_an_empty_working_directory() {
    let scratch = Scratch::new();
    let mut process = Process::spawn(scratch.latch());
    process.wait_until_listening(scratch.port);
    let http = http_client();

    let home = http.get(scratch.url("/")).send().await.expect("GET /");
    let home = (home.status(), home.text().await.expect("the body"));
    let css = http
        .get(scratch.url("/static/style.css"))
        .send()
        .await
        .expect("GET /static/style.css");
    let css_type = css
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let css = (css.status(), css.text().await.expect("the body"));
    let login = http
        .get(scratch.url("/login"))
        .send()
        .await
        .expect("GET /login");
    let login = (login.status(), login.text().await.expect("the body"));

    let output = process.output();
    assert_eq!(home.0, 200, "{}\n{output}", home.1);
    assert!(home.1.contains("Welcome"), "{}", home.1);
    assert_eq!(css.0, 200, "{}\n{output}", css.1);
    assert!(css_type.starts_with("text/css"), "content-type {css_type}");
    assert!(!css.1.trim().is_empty(), "an empty stylesheet");
    assert_eq!(login.0, 200, "{}\n{output}", login.1);
    assert!(login.1.contains(r#"name="csrf_token""#), "{}", login.1);
}

async fn sigterm_under_load_exits_zero_and_every_answered_write_is_stored(backend: Backend) {
    stop_under_load(backend, "TERM").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_under_load_exits_zero_and_every_answered_write_is_stored() {
    stop_under_load(Backend::Sqlite, "INT").await;
}

/// Starts the binary, keeps `LOOPS` request loops creating one session each per `GET /user/u<N>`
/// for a second, sends `signal` while requests are in flight, and asserts a clean exit (status 0
/// within `SHUTDOWN_LIMIT`, no panic, no failed shutdown) that kept every write it answered.
async fn stop_under_load(backend: Backend, signal: &str) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let cwd = tempfile::tempdir().expect("a temp dir to run in");
    let port = free_port();
    let mut process = Process::spawn(latch(cwd.path(), db.url(), port));
    process.wait_until_listening(port);
    // Keep-alive connections, unlike `http_client()`.
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("an HTTP client");
    let answered = Arc::new(AtomicU64::new(0));
    let next = Arc::new(AtomicU64::new(0));
    let loops: Vec<_> = (0..LOOPS)
        .map(|_| {
            let (client, answered, next) = (client.clone(), answered.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, Ordering::SeqCst);
                    let url = format!("http://127.0.0.1:{port}/user/u{n}");
                    match client.get(&url).send().await {
                        Ok(response) if response.status() == 200 => {
                            answered.fetch_add(1, Ordering::SeqCst);
                            let _ = response.bytes().await;
                        }
                        Ok(response) => return format!("GET {url}: {}", response.status()),
                        Err(error) => return format!("GET {url}: {error}"),
                    }
                }
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_secs(1)).await;
    let answered_before_signal = answered.load(Ordering::SeqCst);
    let signalled = Instant::now();
    process.signal(signal);
    let status = tokio::task::block_in_place(|| process.exit_within(SHUTDOWN_LIMIT));
    let took = signalled.elapsed();
    let stopped = tokio::time::timeout(PATIENCE, join_all(loops))
        .await
        .expect("the request loops stop once the server is gone");
    let answered = answered.load(Ordering::SeqCst);
    let rows = db.rows().await.len();

    let output = process.output();
    let stopped: Vec<String> = stopped
        .into_iter()
        .map(|stopped| stopped.expect("a request loop"))
        .collect();
    let summary = format!(
        "SIG{signal} on {backend:?}: {answered_before_signal} answered before the signal, \
         {answered} in all, {rows} rows, exit after {took:?}; the loops stopped on:\n{}\n{output}",
        stopped.join("\n")
    );
    assert!(answered_before_signal > 0, "no load ran: {summary}");
    let Some(status) = status else {
        panic!("still running {SHUTDOWN_LIMIT:?} after SIG{signal} (killed): {summary}");
    };
    assert_eq!(status.code(), Some(0), "exit status {status}: {summary}");
    let lowercase = output.to_lowercase();
    for word in ["panicked", "failed to shutdown", "shutdown failed"] {
        assert!(!lowercase.contains(word), "`{word}` in the log: {summary}");
    }
    assert!(
        u64::try_from(rows).expect("a count") >= answered,
        "every answered write is a row: {summary}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_names_the_database_and_never_its_password() {
    let Some(db) = TestDb::create(Backend::Postgres).await else {
        return;
    };
    // The server trusts local connections, so a password in the URL is sent and ignored.
    let password = "hunter2-never-logged";
    let url = db
        .url()
        .replacen("://postgres@", &format!("://postgres:{password}@"), 1);
    assert!(url.contains(password), "{url}");

    let server = Server::start(&url, &[("ROCKET_LOG_LEVEL", "normal")]);

    let log = server.log();
    let line = log
        .lines()
        .find(|line| line.contains("latch: sessions in"))
        .unwrap_or_else(|| panic!("no line names the database:\n{log}"));
    assert!(line.contains("PostgreSQL"), "{line}");
    assert!(line.contains("`sessions`"), "{line}");
    let database = db
        .url()
        .rsplit('/')
        .next()
        .expect("a database name")
        .to_owned();
    assert!(line.contains(&database), "{line}");
    assert!(
        !log.contains(password),
        "the password is in the log:\n{log}"
    );
}
