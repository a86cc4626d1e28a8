//! A real database outage: a throwaway PostgreSQL cluster of the test's own is shut down under a
//! running `latch` process and started again. Requests fail fast with 503, the process stays
//! up, and the same session cookie works once the database is back.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::{COOKIE, REQUIRE_POSTGRES_VAR};
use crate::server::{Server, free_port, http_client, session_cookie};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_database_gives_fast_503s_and_the_session_is_back_with_it() {
    let Some(bin) = postgres_bin_dir() else {
        skip("no initdb / pg_ctl under /usr/lib/postgresql/<version>/bin");
        return;
    };
    let cluster = Cluster::create(&bin);
    cluster.start();
    let mut server = Server::start(
        &format!("postgres://postgres@127.0.0.1:{}/postgres", cluster.port),
        &[("ROCKET_DATABASE_TIMEOUT", "2")],
    );
    let http = http_client();
    let set = http
        .get(server.url("/user/Ada"))
        .send()
        .await
        .expect("GET /user/Ada");
    assert_eq!(set.status(), 200);
    let cookie = session_cookie(&set).expect("a session cookie");
    let (user, name) = (server.url("/user"), server.url("/name"));
    let get = |url: &str| {
        http.get(url)
            .header(reqwest::header::COOKIE, format!("{COOKIE}={cookie}"))
            .send()
    };

    // The database goes away.
    cluster.stop();
    // A cached session may still be served for the moment it takes the app to notice; the
    // first 503 must come within a few seconds.
    let started = Instant::now();
    let (page_status, page_body) = loop {
        let page = get(&user).await.expect("GET /user while down");
        let status = page.status();
        let body = page.text().await.expect("body");
        if status != 200 || started.elapsed() > Duration::from_secs(5) {
            break (status, body);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let took = started.elapsed();
    let api = get(&name).await.expect("GET /name while down");
    let api_status = api.status();
    let api_body = api.text().await.expect("body");

    assert_eq!(page_status, 503, "{page_body}");
    assert!(page_body.contains("unavailable"), "{page_body}");
    assert!(took < Duration::from_secs(5), "the 503 took {took:?}");
    assert_eq!(api_status, 503, "{api_body}");
    let api_json: Value = serde_json::from_str(&api_body).expect("a JSON error body");
    assert!(api_json["error"].is_string(), "{api_body}");
    assert!(server.is_running(), "the app outlives its database");
    eprintln!("cluster outage: 503 after {took:?}");

    // The database comes back: the same cookie finds the same session.
    cluster.start();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = (reqwest::StatusCode::IM_A_TEAPOT, String::new());
    for _ in 0..100 {
        let response = get(&user).await.expect("GET /user after the outage");
        last = (response.status(), response.text().await.expect("body"));
        if last.0 == 200 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(last.0, 200, "{}", last.1);
    assert!(last.1.contains("<h1>Ada</h1>"), "{}", last.1);
    assert!(server.is_running());
}

/// Says why the test did nothing, or fails when Postgres tests are required.
fn skip(why: &str) {
    assert!(
        std::env::var(REQUIRE_POSTGRES_VAR).as_deref() != Ok("1"),
        "{REQUIRE_POSTGRES_VAR}=1 but the cluster test cannot run: {why}"
    );
    // Straight to stderr: the test harness would swallow eprintln! from a passing test.
    let _ = writeln!(
        std::io::stderr(),
        "\nPostgres cluster test SKIPPED: {why}.\n"
    );
}

/// The newest `/usr/lib/postgresql/<version>/bin` that has both `initdb` and `pg_ctl`.
fn postgres_bin_dir() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("pg_ctl").is_file()).then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

/// A PostgreSQL cluster in a temp dir, on a free loopback port, with trust auth. Stopped
/// (immediately) when dropped; the temp dir goes with it.
struct Cluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    as_root: bool,
}

impl Cluster {
    fn create(bin: &Path) -> Self {
        let dir = tempfile::tempdir().expect("a temp dir for the cluster");
        let as_root = is_root();
        let cluster = Self {
            bin: bin.to_owned(),
            dir,
            port: free_port(),
            as_root,
        };
        if as_root {
            // initdb and postgres refuse to run as root: the cluster belongs to `postgres`.
            run(Command::new("chown")
                .arg("postgres:")
                .arg(cluster.dir.path()));
        }
        run(cluster
            .pg("initdb")
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(cluster.data()));
        cluster
    }

    /// Starts the cluster and waits until it accepts connections.
    fn start(&self) {
        let options = format!(
            "-k {} -p {} -c listen_addresses=127.0.0.1",
            self.dir.path().display(),
            self.port
        );
        run(self
            .pg("pg_ctl")
            .args(["-w", "-t", "30", "-D"])
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.path().join("postgres.log"))
            .args(["-o", &options, "start"]));
    }

    /// A fast shutdown: open connections are cut, and the call returns once it is down.
    fn stop(&self) {
        run(self
            .pg("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-w", "-m", "fast", "stop"]));
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A command running the Postgres program `name`, as `postgres` when we are root.
    fn pg(&self, name: &str) -> Command {
        let program = self.bin.join(name);
        if self.as_root {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Whatever happened in the test, leave no postgres running; a stopped one just says so.
        let _ = self
            .pg("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-w", "-m", "immediate", "stop"])
            .output();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// Runs a command to completion and fails the test, with its output, if it did not succeed.
fn run(command: &mut Command) {
    let out = command
        .output()
        .unwrap_or_else(|error| panic!("could not run {command:?}: {error}"));
    assert!(
        out.status.success(),
        "{command:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
