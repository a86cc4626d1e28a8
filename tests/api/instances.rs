//! Scale-out: two `latch` processes behind one imaginary load balancer, sharing one Postgres
//! database and one secret key. A session is the same session on either, and both can purge at
//! once without tripping over each other.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use sqlx::Connection as _;

use crate::helpers::{Backend, COOKIE, TestDb};
use crate::server::{Server, http_client, logout, session_cookie};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_made_on_one_process_is_read_changed_and_ended_on_the_other() {
    let Some(db) = TestDb::create(Backend::Postgres).await else {
        return;
    };
    let a = Server::start(db.url(), &[]);
    let b = Server::start(db.url(), &[]);
    let http = http_client();
    let set = http
        .get(a.url("/user/Ada"))
        .send()
        .await
        .expect("GET /user/Ada on A");
    assert_eq!(set.status(), 200);
    let cookie = session_cookie(&set).expect("a session cookie");
    let get = |url: String| {
        let request = http
            .get(url)
            .header(reqwest::header::COOKIE, format!("{COOKIE}={cookie}"));
        async move {
            let response = request.send().await.expect("GET");
            let status = response.status();
            (status, response.text().await.expect("body"))
        }
    };

    let seen_on_b = get(b.url("/user")).await;
    let seen_on_a = get(a.url("/user")).await;
    let changed_on_b = http
        .post(b.url("/name"))
        .header(reqwest::header::COOKIE, format!("{COOKIE}={cookie}"))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(json!({ "name": "Grace" }).to_string())
        .send()
        .await
        .expect("POST /name on B")
        .status();
    let change_seen_on_a = get(a.url("/name")).await;
    let logout_on_b = logout(&http, &b.url(""), &cookie).await;
    let after_logout_on_a = get(a.url("/user")).await;

    assert!(seen_on_b.1.contains("<h1>Ada</h1>"), "{}", seen_on_b.1);
    assert!(seen_on_a.1.contains("<h1>Ada</h1>"), "{}", seen_on_a.1);
    assert_eq!(changed_on_b, 200);
    // A has just read the session itself: it must not answer from a stale copy.
    assert_eq!(
        serde_json::from_str::<Value>(&change_seen_on_a.1).expect("JSON"),
        json!({ "name": "Grace" })
    );
    assert_eq!(logout_on_b.0, 200, "{}", logout_on_b.1);
    assert_eq!(after_logout_on_a.0, 200);
    assert!(
        after_logout_on_a.1.contains("user logged out!"),
        "logout on B ends the session on A at once:\n{}",
        after_logout_on_a.1
    );
    assert_eq!(db.rows().await.len(), 0, "logout deleted the row");
}

/// A cache smaller than the sessions, every read of a burst due a touch (so A extends the
/// deadlines and keeps, or evicts, its copies while the reads race), then a logout on B: A must
/// still show every session as it is, and the ended one as ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn touches_on_one_process_never_keep_a_session_the_other_ended() {
    let Some(db) = TestDb::create(Backend::Postgres).await else {
        return;
    };
    // An 8 s idle timeout touches at most every 2 s; A caches 4 of the 10 sessions.
    let a = Server::start(
        db.url(),
        &[("ROCKET_SESSION", "{idle_timeout=8,cache_capacity=4}")],
    );
    let b = Server::start(db.url(), &[("ROCKET_SESSION", "{idle_timeout=8}")]);
    let http = http_client();
    let mut cookies = Vec::new();
    for i in 0..10 {
        let set = http
            .get(a.url(&format!("/user/user{i}")))
            .send()
            .await
            .expect("GET /user/<name> on A");
        assert_eq!(set.status(), 200);
        cookies.push(session_cookie(&set).expect("a session cookie"));
    }
    let read_on_a = |cookie: String| {
        let request = http
            .get(a.url("/user"))
            .header(reqwest::header::COOKIE, format!("{COOKIE}={cookie}"));
        async move {
            let response = request.send().await.expect("GET /user on A");
            (response.status(), response.text().await.expect("body"))
        }
    };
    tokio::time::sleep(Duration::from_millis(2_200)).await;

    // Every session due a touch, three reads of each released at once.
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(30));
    let burst: Vec<_> = (0..30)
        .map(|i| {
            let (read, start) = (read_on_a(cookies[i % 10].clone()), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                read.await
            })
        })
        .collect();
    for (i, read) in burst.into_iter().enumerate() {
        let (status, body) = read.await.expect("a reader");
        assert_eq!(status, 200);
        assert!(body.contains(&format!("<h1>user{}</h1>", i % 10)), "{body}");
    }
    let touched = db
        .rows()
        .await
        .iter()
        .filter(|row| row.expires_at > row.created_at + 8_000)
        .count();
    assert_eq!(touched, 10, "every session's deadline moved");

    let logout_on_b = logout(&http, &b.url(""), &cookies[3]).await;
    assert_eq!(logout_on_b.0, 200, "{}", logout_on_b.1);
    for (i, cookie) in cookies.iter().enumerate() {
        let (status, body) = read_on_a(cookie.clone()).await;
        assert_eq!(status, 200);
        if i == 3 {
            assert!(body.contains("user logged out!"), "ended on B:\n{body}");
        } else {
            assert!(body.contains(&format!("<h1>user{i}</h1>")), "{body}");
        }
    }
}

/// Expired rows seeded straight into the table: a hundred purge batches.
const EXPIRED: i64 = 5000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_purging_every_second_clear_a_backlog_once_and_without_failures() {
    let Some(db) = TestDb::create(Backend::Postgres).await else {
        return;
    };
    // Small batches: a pass over the backlog lasts long enough for the two to overlap.
    let env = [
        ("ROCKET_SESSION", "{purge_interval=1,purge_batch_size=50}"),
        ("ROCKET_LOG_LEVEL", "normal"),
    ];
    let mut a = Server::start(db.url(), &env);
    let mut b = Server::start(db.url(), &env);
    let http = http_client();
    let set = http
        .get(a.url("/user/Ada"))
        .send()
        .await
        .expect("GET /user/Ada on A");
    assert_eq!(set.status(), 200);
    let cookie = session_cookie(&set).expect("a session cookie");
    let mut conn = sqlx::PgConnection::connect(db.url())
        .await
        .expect("connect");
    let now: i64 = sqlx::query_scalar("select (extract(epoch from now()) * 1000)::bigint")
        .fetch_one(&mut conn)
        .await
        .expect("now");
    // One statement: distinct 32-byte hashes, all expired a minute ago.
    sqlx::query(
        "insert into sessions (id_hash, data, version, created_at, expires_at)
         select sha256(convert_to('expired ' || i, 'UTF8')), '{\"name\":\"old\"}', 1, $1, $2
         from generate_series(1, $3) as i",
    )
    .bind(now - 3_600_000)
    .bind(now - 60_000)
    .bind(EXPIRED)
    .execute(&mut conn)
    .await
    .expect("seed expired rows");
    sqlx::query(
        "insert into sessions (id_hash, data, version, created_at, expires_at)
         values (sha256('live'), '{\"name\":\"live\"}', 1, $1, $2)",
    )
    .bind(now)
    .bind(now + 3_600_000)
    .execute(&mut conn)
    .await
    .expect("seed a live row");

    // Both purge every second; wait (bounded) until the backlog is gone.
    let started = Instant::now();
    let deadline = started + Duration::from_secs(30);
    let mut expired_left = EXPIRED;
    for _ in 0..300 {
        let expired = db
            .rows()
            .await
            .into_iter()
            .filter(|row| row.expires_at <= now);
        expired_left = i64::try_from(expired.count()).expect("a count");
        if expired_left == 0 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = started.elapsed();

    assert_eq!(expired_left, 0, "the backlog is purged within 30 s");
    assert!(a.is_running() && b.is_running());
    let live_hash = Sha256::digest("live");
    let live = db
        .rows()
        .await
        .into_iter()
        .filter(|row| row.id_hash == live_hash[..]);
    assert_eq!(live.count(), 1, "a live row is never purged");
    let page = http
        .get(b.url("/user"))
        .header(reqwest::header::COOKIE, format!("{COOKIE}={cookie}"))
        .send()
        .await
        .expect("GET /user on B")
        .text()
        .await
        .expect("body");
    assert!(page.contains("<h1>Ada</h1>"), "{page}");
    // Each expired row was deleted exactly once, by one of the two. The log line of the pass that
    // deleted the last batch may trail its commit a little.
    let mut removed = (0, 0);
    for _ in 0..50 {
        removed = (purged_per_log(&a.log()), purged_per_log(&b.log()));
        if removed.0 + removed.1 >= EXPIRED {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (log_a, log_b) = (a.log(), b.log());
    for log in [&log_a, &log_b] {
        // The log is really captured at this level, so the absence below means something.
        assert!(log.contains("launched"), "{log}");
        assert!(!log.contains("session purge failed"), "{log}");
    }
    assert_eq!(
        removed.0 + removed.1,
        EXPIRED,
        "rows removed per the logs (A, B) = {removed:?}\nA:\n{log_a}\nB:\n{log_b}"
    );
    eprintln!("two purgers: {EXPIRED} rows gone in {took:?}, removed (A, B) = {removed:?}");
}

/// The sum of `N` over a log's `session purge: removed N expired sessions` lines.
fn purged_per_log(log: &str) -> i64 {
    log.lines()
        .filter_map(|line| {
            line.split_once("session purge: removed ")?
                .1
                .split(' ')
                .next()
        })
        .filter_map(|count| count.parse::<i64>().ok())
        .sum()
}
