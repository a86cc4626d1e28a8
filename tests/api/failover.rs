//! latch through real failovers: two instances of the binary on a pg_auto_failover formation
//! (see `formation`), reached by a multi-host URL, or by one address that moves to the new
//! primary, under load while `pg_autoctl perform failover` runs and while the primary is
//! killed. While the primary changes, requests get
//! 503 and nothing else; service comes back on its own; every counter value answered before
//! is still there; a session logged out during the switch is dead on both instances; neither
//! process exits or panics.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::Connection as _;

use crate::formation::{Formation, node_url};
use crate::helpers::{Backend, COOKIE, TestDb};
use crate::launch::{assert_refused, latch};
use crate::server::{Server, free_port, http_client, post_logout, session_cookie};

/// The servers log warnings (each 503, and the watcher's moves), for a failure to show, and
/// purge every second.
const LOGGED: &[(&str, &str)] = &[
    ("ROCKET_LOG_LEVEL", "normal"),
    ("ROCKET_SESSION", "{purge_interval=1}"),
];

/// Visitors hitting the counter back to back during a switch.
const VISITORS: usize = 8;
/// How long service may take to come back after the formation has a new primary.
const BACK_WITHIN: Duration = Duration::from_secs(15);

/// What one visitor saw: every answer's status and when, and the highest count answered.
#[derive(Debug, Default)]
struct Visits {
    cookie: String,
    answers: Vec<(Instant, u16)>,
    highest_count: u32,
    transport_errors: Vec<String>,
}

/// The count a counter page shows (`You visited this page N times`).
fn count_in(page: &str) -> Option<u32> {
    let rest = page.split("You visited this page ").nth(1)?;
    rest.split_whitespace().next()?.parse().ok()
}

/// When each visitor was last answered 200, as it goes.
type LastOk = Arc<Vec<Mutex<Option<Instant>>>>;

/// A visitor with a session of its own, alternating between `servers`, until `stop`.
async fn visit(
    servers: [String; 2],
    index: usize,
    stop: Arc<AtomicBool>,
    last_ok: LastOk,
) -> Visits {
    let http = http_client();
    let first = http
        .get(format!("{}/", servers[index % 2]))
        .send()
        .await
        .expect("the first visit");
    assert_eq!(first.status(), 200, "the first visit");
    let mut visits = Visits {
        cookie: session_cookie(&first).expect("a session cookie"),
        highest_count: 1,
        ..Visits::default()
    };
    let mut turn = index;
    while !stop.load(Ordering::SeqCst) {
        turn += 1;
        let answer = http
            .get(format!("{}/", servers[turn % 2]))
            .header(
                reqwest::header::COOKIE,
                format!("{COOKIE}={}", visits.cookie),
            )
            .send()
            .await;
        match answer {
            Ok(response) => {
                let status = response.status().as_u16();
                visits.answers.push((Instant::now(), status));
                if status == 200 {
                    *last_ok[index].lock().expect("the visitors' clock") = Some(Instant::now());
                    let page = response.text().await.unwrap_or_default();
                    if let Some(count) = count_in(&page) {
                        visits.highest_count = visits.highest_count.max(count);
                    }
                } else {
                    // Don't spin on a database that is away.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            Err(error) => visits.transport_errors.push(error.to_string()),
        }
    }
    visits
}

/// How long the checks after a switch retry a 503: on a loaded machine the monitor may take a
/// slow node for a dead one and switch again, which is a 503 as it should be. What the checks
/// look at is the data, not whether the database is up at that moment.
const CHECK_PATIENCE: Duration = Duration::from_secs(30);

/// `path` on `server` with `cookie`'s session, once it answers something other than 503.
async fn page_of(server: &Server, path: &str, cookie: &str) -> (u16, String) {
    let http = http_client();
    let deadline = Instant::now() + CHECK_PATIENCE;
    loop {
        let response = http
            .get(server.url(path))
            .header(reqwest::header::COOKIE, format!("{COOKIE}={cookie}"))
            .send()
            .await
            .expect("the server answers");
        let status = response.status().as_u16();
        let page = response.text().await.expect("a page");
        if status != 503 || Instant::now() > deadline {
            return (status, page);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The count `cookie`'s session shows now on `server` (a visit adds one).
async fn count_now(server: &Server, cookie: &str) -> u32 {
    let (status, page) = page_of(server, "/", cookie).await;
    count_in(&page).unwrap_or_else(|| {
        panic!(
            "a counter page, got {status}: {page}\nthe server's log:\n{}",
            server.log()
        )
    })
}

/// The `/user` page of `cookie`'s session on `server`.
async fn user_page(server: &Server, cookie: &str) -> (u16, String) {
    page_of(server, "/user", cookie).await
}

/// One try at logging out as a browser does (the confirmation page, then its form): the first
/// status that is not a success, or the logout's.
async fn logout_once(http: &reqwest::Client, base: &str, session: &str) -> (u16, String) {
    let page = http
        .get(format!("{base}/logout"))
        .header(reqwest::header::COOKIE, format!("{COOKIE}={session}"))
        .send()
        .await
        .expect("GET /logout");
    let status = page.status().as_u16();
    let body = page.text().await.expect("the page");
    if status != 200 {
        return (status, body);
    }
    let token = crate::helpers::csrf_token_in(&body);
    post_logout(http, base, session, &token).await
}

/// How the primary goes away.
#[derive(Debug, Clone, Copy)]
enum Switch {
    /// `pg_autoctl perform failover`: the primary is demoted, the standby promoted.
    Planned,
    /// The primary's keeper and Postgres are killed, as if its machine died.
    HardStop,
}

/// What a switch cost, for the report.
#[derive(Debug)]
struct Outage {
    /// From the switch's start until the last visitor to fail was answered 200 again (zero
    /// if none failed, `None` if one never was).
    back_after: Option<Duration>,
    /// Answers that were not 200 (all 503s, or the test failed).
    not_ok: BTreeMap<u16, usize>,
    answered: usize,
}

/// Runs `switch` on `formation` while visitors load `a` and `b`, logs a session out during it,
/// and checks what the module promises. Returns what it cost.
/// `promoted` hears the new primary's port as soon as the formation has one.
async fn switch_under_load(
    formation: &mut Formation,
    a: &Server,
    b: &Server,
    switch: Switch,
    promoted_to: impl Fn(u16),
) -> Outage {
    let http = http_client();
    let set = http
        .get(a.url("/user/Doomed"))
        .send()
        .await
        .expect("GET /user/Doomed");
    assert_eq!(set.status(), 200, "a session to log out during the switch");
    let doomed = session_cookie(&set).expect("a session cookie");
    // Both instances hold it in their caches when it is logged out.
    for server in [a, b] {
        let (status, page) = user_page(server, &doomed).await;
        assert!(status == 200 && page.contains("<h1>Doomed</h1>"), "{page}");
    }

    let stop = Arc::new(AtomicBool::new(false));
    let last_ok: LastOk = Arc::new((0..VISITORS).map(|_| Mutex::new(None)).collect());
    let visitors: Vec<_> = (0..VISITORS)
        .map(|index| {
            let servers = [a.url(""), b.url("")];
            tokio::spawn(visit(
                servers,
                index,
                Arc::clone(&stop),
                Arc::clone(&last_ok),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;

    let old_primary = formation.primary_port().await.expect("a primary");
    let started = Instant::now();
    let logged_out = {
        let base = a.url("");
        let doomed = doomed.clone();
        tokio::spawn(async move {
            // Retried until it is answered: an answered logout must hold.
            let http = http_client();
            loop {
                let (status, body) = logout_once(&http, &base, &doomed).await;
                if status < 400 {
                    return;
                }
                assert_eq!(status, 503, "a logout during the switch: {body}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    match switch {
        Switch::Planned => formation.perform_failover().await,
        Switch::HardStop => {
            formation.stop_primary_hard().await;
        }
    }
    let new_primary = formation
        .wait_for_primary_change(old_primary, Duration::from_secs(90))
        .await;
    let promoted = started.elapsed();
    promoted_to(new_primary);
    tokio::time::timeout(BACK_WITHIN, logged_out)
        .await
        .expect("the logout was answered once the new primary was up")
        .expect("the logout task");

    // Load goes on until every visitor has been answered 200 after the promotion.
    let promoted_at = started + promoted;
    let deadline = Instant::now() + BACK_WITHIN;
    while Instant::now() < deadline && !all_ok_since(&last_ok, promoted_at) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.store(true, Ordering::SeqCst);
    let mut all = Vec::new();
    for visitor in visitors {
        all.push(visitor.await.expect("a visitor task"));
    }

    let mut not_ok = BTreeMap::new();
    // `None` once a visitor's last answer was a failure: service never came back for it.
    let mut back_at = Some(started);
    let mut answered = 0;
    for visits in &all {
        answered += visits.answers.len();
        for (_, status) in &visits.answers {
            if *status != 200 {
                *not_ok.entry(*status).or_insert(0) += 1;
            }
        }
        // Service is back for this visitor at its first 200 after its last failure.
        let last_failure = visits
            .answers
            .iter()
            .filter(|(_, status)| *status != 200)
            .map(|(at, _)| *at)
            .max();
        if let Some(failed_at) = last_failure {
            let back = visits
                .answers
                .iter()
                .find(|(at, status)| *at > failed_at && *status == 200)
                .map(|(at, _)| *at);
            back_at = back_at.zip(back).map(|(latest, back)| latest.max(back));
        }
        assert!(
            visits.transport_errors.is_empty(),
            "{switch:?}: a request got no answer: {:?}",
            visits.transport_errors
        );
    }
    let outage = Outage {
        back_after: back_at.map(|at| at - started),
        not_ok,
        answered,
    };
    eprintln!(
        "{switch:?}: primary moved {old_primary} -> {new_primary} (promoted, as the monitor \
         says, after {promoted:?}); service back {:?} after the switch began; {} answers, \
         not 200: {:?}",
        outage.back_after, outage.answered, outage.not_ok
    );
    assert!(
        outage.answered > 100,
        "{switch:?}: the load ran: {outage:?}"
    );

    assert!(
        outage.not_ok.keys().all(|status| *status == 503),
        "{switch:?}: only 503s while it switched: {outage:?}"
    );
    assert!(
        all_ok_since_visits(&all, promoted_at),
        "{switch:?}: service came back within {BACK_WITHIN:?} of the promotion: {outage:?}"
    );
    for visits in &all {
        let now = count_now(b, &visits.cookie).await;
        assert!(
            now > visits.highest_count,
            "{switch:?}: an answered count was lost: answered {}, now {now}",
            visits.highest_count
        );
    }
    for server in [a, b] {
        let (status, page) = user_page(server, &doomed).await;
        assert_eq!(status, 200, "{page}");
        assert!(
            !page.contains("<h1>Doomed</h1>"),
            "{switch:?}: a session logged out during the switch is served: {page}"
        );
    }
    outage
}

/// Whether every visitor has been answered 200 since `since`.
fn all_ok_since(last_ok: &LastOk, since: Instant) -> bool {
    last_ok.iter().all(|last| {
        last.lock()
            .expect("the visitors' clock")
            .is_some_and(|at| at >= since)
    })
}

fn all_ok_since_visits(all: &[Visits], since: Instant) -> bool {
    all.iter().all(|visits| {
        visits
            .answers
            .iter()
            .any(|(at, status)| *at >= since && *status == 200)
    })
}

/// Two instances on a formation, through a planned failover and then a hard stop of the new
/// primary (after the old one has rejoined as its standby); the purge still works after both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_ride_out_a_planned_failover_and_a_hard_stop_of_the_primary() {
    let Some(mut formation) = Formation::start().await else {
        return;
    };
    let database = formation.create_database().await;
    let url = formation.multi_host_url(&database);
    let a = Server::start(&url, LOGGED);
    let b = Server::start(&url, LOGGED);

    let planned = switch_under_load(&mut formation, &a, &b, Switch::Planned, drop).await;
    formation.wait_until_ready(Duration::from_secs(90)).await;
    let hard = switch_under_load(&mut formation, &a, &b, Switch::HardStop, drop).await;

    // The purge task carried on too: an expired row on the new primary goes within seconds.
    let primary = formation.primary_port().await.expect("a primary");
    let mut on_primary = sqlx::PgConnection::connect(&node_url(primary, &database))
        .await
        .expect("the new primary");
    sqlx::query(
        "insert into sessions (id_hash, data, created_at, expires_at) \
         values (sha256('expired before the failovers'), '{}', 0, 1)",
    )
    .execute(&mut on_primary)
    .await
    .expect("an expired row");
    let deadline = Instant::now() + CHECK_PATIENCE;
    let mut left: i64 = 1;
    while left > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        left = sqlx::query_scalar("select count(*) from sessions where expires_at = 1")
            .fetch_one(&mut on_primary)
            .await
            .expect("count the expired row");
    }
    assert_eq!(left, 0, "the purge works on the new primary");

    assert_still_running([a, b]);
    eprintln!("planned failover: {planned:?}\nhard stop: {hard:?}");
}

/// Two instances reach the formation through one address that moves to the new primary once
/// it is promoted, as a managed Postgres's DNS name does (every connection it carried breaks):
/// the same watch follows it with a single-host URL and `target_session_attrs=read-write`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_one_address_that_moves_to_the_new_primary_two_instances_ride_out_a_failover() {
    let Some(mut formation) = Formation::start().await else {
        return;
    };
    let database = formation.create_database().await;
    let primary = formation.primary_port().await.expect("a primary");
    let endpoint = Endpoint::start(primary).await;
    let url = format!(
        "postgres://postgres@127.0.0.1:{}/{database}?target_session_attrs=read-write",
        endpoint.port
    );
    let a = Server::start(&url, LOGGED);
    let b = Server::start(&url, LOGGED);

    let outage = switch_under_load(&mut formation, &a, &b, Switch::Planned, |new_primary| {
        endpoint.move_to(new_primary);
    })
    .await;

    assert_still_running([a, b]);
    eprintln!("one moving address, planned failover: {outage:?}");
}

/// Neither instance exited, and neither logged a panic.
fn assert_still_running(servers: [Server; 2]) {
    for (name, mut server) in ["A", "B"].into_iter().zip(servers) {
        assert!(server.is_running(), "instance {name} exited");
        let log = server.log().to_lowercase();
        assert!(
            !log.contains("panicked"),
            "instance {name} panicked:\n{log}"
        );
    }
}

/// One address for the database, as a managed Postgres gives its clients: a TCP forwarder to
/// the node it points at. Moving it to another node breaks every connection it carried, as a
/// failover behind such a name does; new connections reach the new node.
struct Endpoint {
    port: u16,
    moves: tokio::sync::watch::Sender<u16>,
    accepting: tokio::task::JoinHandle<()>,
}

impl Endpoint {
    async fn start(node: u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port");
        let port = listener.local_addr().expect("its address").port();
        let (moves, moved) = tokio::sync::watch::channel(node);
        let accepting = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut moved = moved.clone();
                let node = *moved.borrow_and_update();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(("127.0.0.1", node)).await
                    else {
                        return;
                    };
                    // Either side closing, or a move, ends the connection (both halves drop).
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = moved.changed() => {}
                    }
                });
            }
        });
        Self {
            port,
            moves,
            accepting,
        }
    }

    /// Points the address at `node`'s port, breaking what it carried.
    fn move_to(&self, node: u16) {
        self.moves.send_replace(node);
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

/// A multi-host URL whose first host does not answer: the next one, which does and takes
/// writes, serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_does_not_answer_is_passed_over_for_the_next() {
    let Some(db) = TestDb::create(Backend::Postgres).await else {
        return;
    };
    let (server_part, database) = db.url().rsplit_once('/').expect("a URL with a database");
    let reachable = server_part
        .rsplit_once('@')
        .map_or(server_part, |(_, host)| host);
    let url = format!(
        "postgres://postgres@127.0.0.1:{},{reachable}/{database}",
        free_port()
    );
    let server = Server::start(&url, &[]);

    let answer = http_client()
        .get(server.url("/user/Ada"))
        .send()
        .await
        .expect("GET /user/Ada");

    assert_eq!(answer.status(), 200);
}

/// `target_session_attrs` other than `read-write` or `any` stops the launch with one line
/// naming it: latch must be able to write.
#[test]
fn a_target_session_attrs_latch_cannot_write_through_is_refused_in_one_line() {
    let cwd = tempfile::tempdir().expect("a working directory");
    let url = "postgres://postgres@127.0.0.1:5432,127.0.0.1:5433/x?target_session_attrs=standby";

    assert_refused(
        latch(cwd.path(), url, free_port()),
        &["target_session_attrs"],
    );
}
