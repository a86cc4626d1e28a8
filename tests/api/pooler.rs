//! latch behind a real PgBouncer (Debian's package), started here as the `postgres` user in a
//! temporary folder on a free port: in session mode the walkthrough works as it does on a
//! direct connection; with `database_direct_url` its migrations and its change listener reach
//! the database past the pooler, and in transaction mode every flow works under load; without
//! it, a transaction pooler is refused at launch. Skipped when `pgbouncer` is not installed, unless
//! `LATCH_REQUIRE_POOLER=1` (CI) makes that a failure.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use latch::{PostgresStore, Table};
use sqlx::PgPool;

use crate::attacks::{Browser, PASSWORD, registered};
use crate::helpers::{Backend, COOKIE, TestDb, say_skipped};
use crate::launch::{assert_refused, latch};
use crate::server::{Server, free_port, http_client, logout, session_cookie};

const PGBOUNCER: &str = "/usr/sbin/pgbouncer";
const REQUIRE_POOLER_VAR: &str = "LATCH_REQUIRE_POOLER";

/// A PgBouncer in front of the local Postgres, stopped when dropped.
struct PgBouncer {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl PgBouncer {
    /// PgBouncer in `pool_mode` (`session` or `transaction`), or `None` when it is not
    /// installed (and not required).
    fn start(pool_mode: &str) -> Option<Self> {
        if !std::path::Path::new(PGBOUNCER).exists() {
            assert!(
                std::env::var(REQUIRE_POOLER_VAR).as_deref() != Ok("1"),
                "{REQUIRE_POOLER_VAR}=1 but {PGBOUNCER} is not installed"
            );
            static SAID: std::sync::Once = std::sync::Once::new();
            say_skipped(
                &SAID,
                "PgBouncer tests SKIPPED: `apt-get install pgbouncer` to run them.",
            );
            return None;
        }
        let dir = tempfile::tempdir().expect("a temporary folder");
        let port = free_port();
        let config = format!(
            "[databases]\n\
             * = host=127.0.0.1 port=5432\n\
             [pgbouncer]\n\
             listen_addr = 127.0.0.1\n\
             listen_port = {port}\n\
             unix_socket_dir =\n\
             auth_type = trust\n\
             auth_file = {users}\n\
             pool_mode = {pool_mode}\n\
             max_client_conn = 500\n\
             default_pool_size = 40\n\
             ignore_startup_parameters = extra_float_digits,options\n\
             logfile = {log}\n",
            users = dir.path().join("users.txt").display(),
            log = dir.path().join("pgbouncer.log").display(),
        );
        std::fs::write(
            dir.path().join("users.txt"),
            "\"postgres\" \"\"\n\"root\" \"\"\n",
        )
        .expect("the user list");
        let ini = dir.path().join("pgbouncer.ini");
        std::fs::write(&ini, config).expect("the configuration");
        // PgBouncer refuses to run as root: it runs as `postgres`, which must read the folder
        // and write its log there.
        let status = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir.path())
            .status()
            .expect("chown");
        assert!(status.success(), "chown the pgbouncer folder");
        // setpriv runs PgBouncer itself (no shell in between), so dropping the child stops it.
        let child = Command::new("setpriv")
            .args(["--reuid=postgres", "--regid=postgres", "--init-groups"])
            .arg(PGBOUNCER)
            .arg(&ini)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start pgbouncer");
        let bouncer = Self {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "pgbouncer did not start listening"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(bouncer)
    }

    /// `database_url` for the same database as `direct`, through this pooler.
    fn url_for(&self, direct: &str) -> String {
        let (_, database) = direct.rsplit_once('/').expect("a URL with a database");
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The same database as `direct`, reached directly as the role `root`: what the walkthrough's
/// `database_direct_url` names here, so its connections are told apart from the pooled ones
/// (the role `postgres`).
fn direct_as_root(direct: &str) -> String {
    let (_, database) = direct.rsplit_once('/').expect("a URL with a database");
    format!("postgres://root@127.0.0.1:5432/{database}")
}

/// Two instances through the pooler share a session: set on A, seen on B, logged out on B
/// and dead on A at once (A's cache heard of the logout).
async fn two_instances_share_a_session_through(a: &Server, b: &Server) {
    let http = http_client();
    let set = http
        .get(a.url("/user/Ada"))
        .send()
        .await
        .expect("GET /user/Ada on A");
    assert_eq!(set.status(), 200);
    let cookie = session_cookie(&set).expect("a session cookie");
    let user_page = |url: String| {
        let request = http
            .get(url)
            .header(reqwest::header::COOKIE, format!("{COOKIE}={cookie}"));
        async move {
            request
                .send()
                .await
                .expect("GET /user")
                .text()
                .await
                .expect("a body")
        }
    };

    // A reads it first, so its cache holds it when B logs it out.
    let on_a = user_page(a.url("/user")).await;
    let on_b = user_page(b.url("/user")).await;
    let (status, body) = logout(&http, &b.url(""), &cookie).await;
    let on_a_after = user_page(a.url("/user")).await;

    assert!(on_a.contains("<h1>Ada</h1>"), "{on_a}");
    assert!(on_b.contains("<h1>Ada</h1>"), "{on_b}");
    assert!(status < 400, "logout on B: {status} {body}");
    assert!(
        on_a_after.contains("user logged out!"),
        "A still serves the logged-out session: {on_a_after}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_session_mode_two_instances_work_as_on_a_direct_connection() {
    let Some(db) = TestDb::create(Backend::Postgres).await else {
        return;
    };
    let Some(bouncer) = PgBouncer::start("session") else {
        return;
    };
    let pooled = bouncer.url_for(db.url());
    let a = Server::start(&pooled, &[]);
    let b = Server::start(&pooled, &[]);

    two_instances_share_a_session_through(&a, &b).await;
}

/// A fresh database, a PgBouncer in `pool_mode` in front of it, and two instances of the
/// binary through it with `database_direct_url` past it (as `root`: see [`direct_as_root`]);
/// `None` when Postgres or PgBouncer is missing (and not required).
async fn two_instances_with_a_direct_url(
    pool_mode: &str,
) -> Option<(TestDb, PgBouncer, Server, Server)> {
    two_instances_with_a_direct_url_and(pool_mode, None).await
}

/// [`two_instances_with_a_direct_url`], the instances' `session` settings set to `session`.
async fn two_instances_with_a_direct_url_and(
    pool_mode: &str,
    session: Option<&str>,
) -> Option<(TestDb, PgBouncer, Server, Server)> {
    let db = TestDb::create(Backend::Postgres).await?;
    let bouncer = PgBouncer::start(pool_mode)?;
    let pooled = bouncer.url_for(db.url());
    let direct = direct_as_root(db.url());
    let mut env = vec![("ROCKET_DATABASE_DIRECT_URL", direct.as_str())];
    env.extend(session.map(|session| ("ROCKET_SESSION", session)));
    let a = Server::start(&pooled, &env);
    let b = Server::start(&pooled, &env);
    Some((db, bouncer, a, b))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_direct_url_carries_the_migrations_and_the_listener_past_the_pooler() {
    let Some((db, _bouncer, a, b)) = two_instances_with_a_direct_url("session").await else {
        return;
    };

    two_instances_share_a_session_through(&a, &b).await;

    // Only the direct URL connects as `root`: latch's tables were made through it, and each
    // instance listens for changes on it (the listener's last statement is its `LISTEN`, or
    // the `select 1` it pings with).
    let owner = db
        .query_text("select tableowner from pg_tables where tablename = 'sessions'")
        .await;
    assert_eq!(owner, "root", "the migrations ran past the pooler");
    let listening = db
        .query_text(
            "select count(*)::text from pg_stat_activity \
             where usename = 'root' and datname = current_database() \
             and (query ilike 'listen%' or query = 'select 1')",
        )
        .await;
    assert_eq!(listening, "2", "each instance listens past the pooler");
}

#[test]
fn a_direct_url_for_sqlite_is_one_clear_error_line() {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_latch"));
    let output = command
        .env("DATABASE_URL", "sqlite::memory:")
        .env("ROCKET_DATABASE_DIRECT_URL", "postgres://root@127.0.0.1/x")
        .arg("sessions")
        .arg("stats")
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr
            .lines()
            .any(|line| line.starts_with("error:") && line.contains("database_direct_url")),
        "{stderr}"
    );
}

/// 24 counter hits on one session, released together and split between `a` and `b`: every
/// hit counts, none is lost to another's write.
async fn a_burst_across_both_counts_every_hit(a: &Server, b: &Server) {
    let http = http_client();
    let first = http.get(a.url("/")).send().await.expect("GET / on A");
    let cookie = session_cookie(&first).expect("a session cookie");

    let start = Arc::new(tokio::sync::Barrier::new(24));
    let hits = (0..24).map(|i| {
        let url = if i % 2 == 0 { a.url("/") } else { b.url("/") };
        let request = http
            .get(url)
            .header(reqwest::header::COOKIE, format!("{COOKIE}={cookie}"));
        let start = Arc::clone(&start);
        tokio::spawn(async move {
            start.wait().await;
            request.send().await.expect("GET /").status().as_u16()
        })
    });
    let statuses: Vec<u16> = futures::future::join_all(hits)
        .await
        .into_iter()
        .map(|status| status.expect("a request task"))
        .collect();
    let last = counter_page(&http, b, &cookie).await;

    assert!(statuses.iter().all(|status| *status == 200), "{statuses:?}");
    assert!(
        last.contains("You visited this page 26 times"),
        "hits were lost: {last}"
    );
}

async fn counter_page(http: &reqwest::Client, server: &Server, cookie: &str) -> String {
    http.get(server.url("/"))
        .header(reqwest::header::COOKIE, format!("{COOKIE}={cookie}"))
        .send()
        .await
        .expect("GET /")
        .text()
        .await
        .expect("a body")
}

/// Registers on `a`, signs in with the password from another browser on `b` (and is refused
/// with a wrong one, which the throttle counts), and is signed in on both.
async fn register_and_sign_in_across(a: &Server, b: &Server) {
    registered(a, "pooled").await;
    let guesser = Browser::new();
    let visitor = Browser::new();

    let wrong = guesser.sign_in(b, "pooled", "not the password").await;
    let right = visitor.sign_in(b, "pooled", PASSWORD).await;

    assert_eq!(wrong.status, 401, "a wrong password: {}", wrong.body);
    assert_eq!(right.status, 303, "the right password: {}", right.body);
    assert!(
        visitor.is_signed_in(b).await,
        "signed in where it signed in"
    );
    assert!(
        visitor.is_signed_in(a).await,
        "signed in on the other instance"
    );
}

/// `SECONDS` of load from `LOOPS` visitors, each with a session of its own, alternating
/// between `a` and `b`: every request answers 200, and each visitor's counter holds every hit
/// it was answered for.
async fn steady_load_on_both_has_no_errors(a: &Server, b: &Server) {
    const LOOPS: usize = 12;
    const SECONDS: u64 = 4;
    let http = http_client();
    let deadline = Instant::now() + Duration::from_secs(SECONDS);
    let visitors = (0..LOOPS).map(|i| {
        let http = http.clone();
        let (urls, check) = ([a.url(""), b.url("")], b.url("/"));
        tokio::spawn(async move {
            let set = http
                .get(format!("{}/user/visitor{i}", urls[i % 2]))
                .send()
                .await
                .expect("GET /user/<name>");
            let mut failures = Vec::new();
            if set.status() != 200 {
                failures.push(format!("set: {}", set.status()));
            }
            let cookie = session_cookie(&set).expect("a session cookie");
            let mut counted = 0u32;
            let mut turn = i;
            while Instant::now() < deadline {
                let base = &urls[turn % 2];
                let path = if turn % 3 == 0 { "/user" } else { "/" };
                turn += 1;
                let answer = http
                    .get(format!("{base}{path}"))
                    .header(reqwest::header::COOKIE, format!("{COOKIE}={cookie}"))
                    .send()
                    .await;
                match answer.map(|answer| answer.status().as_u16()) {
                    Ok(200) if path == "/" => counted += 1,
                    Ok(200) => {}
                    Ok(status) => failures.push(format!("{path}: {status}")),
                    Err(error) => failures.push(format!("{path}: {error}")),
                }
            }
            let last = http
                .get(check)
                .header(reqwest::header::COOKIE, format!("{COOKIE}={cookie}"))
                .send()
                .await
                .expect("GET /")
                .text()
                .await
                .expect("a body");
            let expected = format!("You visited this page {} times", counted + 1);
            if !last.contains(&expected) {
                failures.push(format!("counter: wanted `{expected}`"));
            }
            (counted, failures)
        })
    });
    let results: Vec<(u32, Vec<String>)> = futures::future::join_all(visitors)
        .await
        .into_iter()
        .map(|result| result.expect("a visitor task"))
        .collect();
    let requests: u32 = results.iter().map(|(counted, _)| counted).sum();
    let failures: Vec<&String> = results.iter().flat_map(|(_, failures)| failures).collect();

    assert!(failures.is_empty(), "errors under load: {failures:?}");
    assert!(requests > 100, "the load ran: {requests} counter hits");
}

/// Two instances behind PgBouncer in transaction mode, with the direct URL: every flow works,
/// a logout on one is seen on the other at once, a burst counts every hit, and seconds of
/// load on both give no errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_transaction_mode_with_a_direct_url_two_instances_serve_every_flow() {
    let Some((_db, _bouncer, a, b)) = two_instances_with_a_direct_url("transaction").await else {
        return;
    };

    two_instances_share_a_session_through(&a, &b).await;
    a_burst_across_both_counts_every_hit(&a, &b).await;
    register_and_sign_in_across(&a, &b).await;
    steady_load_on_both_has_no_errors(&a, &b).await;
}

/// Behind a transaction pooler without a direct URL, a LISTEN would hear nothing: the launch
/// is refused with one line naming `database_direct_url` rather than serve a cache that
/// cannot hear other instances' logouts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_transaction_mode_without_a_direct_url_the_launch_is_refused() {
    let Some(db) = TestDb::create(Backend::Postgres).await else {
        return;
    };
    let Some(bouncer) = PgBouncer::start("transaction") else {
        return;
    };
    let pooled = bouncer.url_for(db.url());
    let cwd = tempfile::tempdir().expect("a working directory");

    let line = assert_refused(
        latch(cwd.path(), &pooled, free_port()),
        &["database_url", "database_direct_url"],
    );

    assert!(line.contains("transaction pooler"), "{line}");
    let tables = db
        .query_text(
            "select count(*)::text from pg_tables where tablename = 'sessions' \
             and schemaname = 'public'",
        )
        .await;
    assert_eq!(tables, "0", "nothing was migrated through the pooler");
}

/// Every operation of the Postgres store, as `latch::testing::contract` checks it (the purge,
/// the per-user index, rekeys, revocations and epoch bumps among them, which the walkthrough's
/// flows reach only in part), through PgBouncer in transaction mode: the store opened with
/// `open_behind_pooler`, behind the batching layer and the cache, each check on a database of
/// its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_keeps_its_whole_contract_through_a_transaction_pooler() {
    if TestDb::create(Backend::Postgres).await.is_none() {
        return;
    }
    let Some(bouncer) = PgBouncer::start("transaction") else {
        return;
    };
    let bouncer = Arc::new(bouncer);
    let databases: Arc<std::sync::Mutex<Vec<TestDb>>> = Arc::default();
    let made = Arc::clone(&databases);

    let checked = latch::testing::contract::check(move || {
        let (bouncer, made) = (Arc::clone(&bouncer), Arc::clone(&made));
        async move {
            let db = TestDb::create(Backend::Postgres)
                .await
                .expect("a scratch database");
            let pooled = PgPool::connect(&bouncer.url_for(db.url()))
                .await
                .expect("the pooler");
            let direct = PgPool::connect(&direct_as_root(db.url()))
                .await
                .expect("the database");
            let store = PostgresStore::open_behind_pooler(pooled, direct, Table::default())
                .await
                .expect("the store opens behind the pooler")
                .batched()
                .cached(100);
            made.lock().expect("the databases").push(db);
            store
        }
    })
    .await;
    drop(databases);

    assert!(
        checked.expired_deletion && checked.user_index,
        "{checked:?}"
    );
    assert_eq!(checked.checks, 22, "{checked:?}");
}

/// The check that refuses a transaction pooler holds while the pooler is busy: an instance with
/// the direct URL is under load through it when another starts without one. The newcomer is
/// refused, and the check (a setting that must not cross between connections, then a
/// notification) costs the busy instance no error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_transaction_pooler_is_still_refused_without_a_direct_url() {
    let Some((db, bouncer, a, b)) = two_instances_with_a_direct_url("transaction").await else {
        return;
    };
    let pooled = bouncer.url_for(db.url());

    let load = steady_load_on_both_has_no_errors(&a, &b);
    let refused = tokio::task::spawn_blocking(move || {
        let cwd = tempfile::tempdir().expect("a working directory");
        // Launched a second into the load.
        std::thread::sleep(Duration::from_secs(1));
        assert_refused(
            latch(cwd.path(), &pooled, free_port()),
            &["database_direct_url"],
        )
    });
    load.await;

    let line = refused.await.expect("the refused launch");
    assert!(line.contains("transaction pooler"), "{line}");
}

/// More sessions than the caches hold (8 each), through PgBouncer in transaction mode: 40
/// sessions, each hit twice at once (one hit on each instance), all 80 requests released
/// together. Loads miss the cache and go out in batches, writes race on every session, and
/// every hit counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_over_more_sessions_than_the_caches_hold_counts_every_hit() {
    const SESSIONS: usize = 40;
    let Some((_db, _bouncer, a, b)) =
        two_instances_with_a_direct_url_and("transaction", Some("{cache_capacity=8}")).await
    else {
        return;
    };
    let http = http_client();
    let mut cookies = Vec::new();
    for i in 0..SESSIONS {
        let server = if i % 2 == 0 { &a } else { &b };
        let first = http.get(server.url("/")).send().await.expect("GET /");
        cookies.push(session_cookie(&first).expect("a session cookie"));
    }

    let start = Arc::new(tokio::sync::Barrier::new(2 * SESSIONS));
    let hits = cookies.iter().flat_map(|cookie| {
        [a.url("/"), b.url("/")].map(|url| {
            let request = http
                .get(url)
                .header(reqwest::header::COOKIE, format!("{COOKIE}={cookie}"));
            let start = Arc::clone(&start);
            tokio::spawn(async move {
                start.wait().await;
                request.send().await.expect("GET /").status().as_u16()
            })
        })
    });
    let statuses: Vec<u16> = futures::future::join_all(hits.collect::<Vec<_>>())
        .await
        .into_iter()
        .map(|status| status.expect("a request task"))
        .collect();
    let mut wrong = Vec::new();
    for (i, cookie) in cookies.iter().enumerate() {
        let server = if i % 2 == 0 { &b } else { &a };
        let page = counter_page(&http, server, cookie).await;
        if !page.contains("You visited this page 4 times") {
            wrong.push(i);
        }
    }

    assert!(statuses.iter().all(|status| *status == 200), "{statuses:?}");
    assert!(wrong.is_empty(), "sessions whose hits were lost: {wrong:?}");
}
