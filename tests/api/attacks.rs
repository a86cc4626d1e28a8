//! The accounts step under attack, through the real binary: bursts of parallel sign-ins and
//! registrations released together, two instances on one database, a flood that would exhaust
//! memory, and a password change raced by sign-ins with the old password.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use futures::future::join_all;
use tokio::sync::Barrier;

use crate::helpers::{Backend, TestDb, backend_tests, csrf_token_in};
use crate::server::{Server, http_client};

backend_tests!(
    thirty_parallel_wrong_passwords_check_at_most_five,
    a_sign_in_does_not_forgive_the_guesses_racing_it,
    thirty_parallel_registrations_from_one_address_make_at_most_ten_accounts,
    a_flood_of_sign_ins_keeps_memory_bounded_and_answers_only_401_429_or_503,
    a_password_change_raced_by_sign_ins_with_the_old_password_leaves_it_dead,
);

pub(crate) const PASSWORD: &str = "correct horse battery";
const NEW_PASSWORD: &str = "battery staple horse";

/// One browser against a real server: a cookie jar of its own.
pub(crate) struct Browser {
    http: reqwest::Client,
    cookies: Mutex<BTreeMap<String, String>>,
}

/// A response's status, `Retry-After` and body.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    retry_after: Option<String>,
    pub(crate) body: String,
}

impl Browser {
    pub(crate) fn new() -> Self {
        Self {
            http: http_client(),
            cookies: Mutex::new(BTreeMap::new()),
        }
    }

    fn cookie_header(&self) -> String {
        let cookies = self.cookies.lock().expect("the jar");
        cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Keeps what `Set-Cookie` says; a cookie set empty is removed.
    fn remember(&self, response: &reqwest::Response) {
        let mut cookies = self.cookies.lock().expect("the jar");
        for value in response.headers().get_all(reqwest::header::SET_COOKIE) {
            let Some((name, value)) = value
                .to_str()
                .ok()
                .and_then(|value| value.split(';').next())
                .and_then(|pair| pair.split_once('='))
            else {
                continue;
            };
            if value.is_empty() {
                cookies.remove(name.trim());
            } else {
                cookies.insert(name.trim().to_owned(), value.trim().to_owned());
            }
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let response = request
            .header(reqwest::header::COOKIE, self.cookie_header())
            .send()
            .await
            .expect("the server answers");
        self.remember(&response);
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let body = response.text().await.unwrap_or_default();
        Answer {
            status,
            retry_after,
            body,
        }
    }

    pub(crate) async fn get(&self, url: String) -> Answer {
        self.send(self.http.get(url)).await
    }

    /// The CSRF token of the form at `url` (its cookie, if any, stays in the jar).
    async fn form_token(&self, url: String) -> String {
        csrf_token_in(&self.get(url).await.body)
    }

    async fn post_form(&self, url: String, fields: &[(&str, &str)]) -> Answer {
        let request = self
            .http
            .post(url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(encode(fields));
        self.send(request).await
    }

    /// Fills in and posts the form at `path` on `server`.
    /// A form page that is not a form (a 409 when the session ended under it) is the answer.
    pub(crate) async fn submit(
        &self,
        server: &Server,
        path: &str,
        fields: &[(&str, &str)],
    ) -> Answer {
        let page = self.get(server.url(path)).await;
        if page.status != 200 {
            return page;
        }
        let token = csrf_token_in(&page.body);
        let mut all = vec![("csrf_token", token.as_str())];
        all.extend_from_slice(fields);
        self.post_form(server.url(path), &all).await
    }

    /// Signs in from this browser.
    pub(crate) async fn sign_in(&self, server: &Server, username: &str, password: &str) -> Answer {
        let fields = [("username", username), ("password", password)];
        self.submit(server, "/account/login", &fields).await
    }

    /// Whether this browser's session is signed in (the device list answers instead of
    /// sending it to sign in).
    pub(crate) async fn is_signed_in(&self, server: &Server) -> bool {
        self.get(server.url("/account/sessions")).await.status == 200
    }
}

/// `browsers` each fetch the form at `path` first, then all post `fields(i)` at once.
async fn burst(
    servers: &[&Server],
    path: &str,
    count: usize,
    fields: impl Fn(usize) -> Vec<(String, String)>,
) -> Vec<Answer> {
    let barrier = Arc::new(Barrier::new(count));
    let posts = (0..count).map(|i| {
        let url = servers[i % servers.len()].url(path);
        let barrier = Arc::clone(&barrier);
        let fields = fields(i);
        async move {
            let browser = Browser::new();
            let token = browser.form_token(url.clone()).await;
            let mut all = vec![("csrf_token", token.as_str())];
            all.extend(fields.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            barrier.wait().await;
            browser.post_form(url, &all).await
        }
    });
    // Each on a task of its own, so the burst is parallel on the client side too.
    let tasks: Vec<_> = posts.map(tokio::spawn).collect();
    join_all(tasks)
        .await
        .into_iter()
        .map(|answer| answer.expect("a request task"))
        .collect()
}

/// `fields` as a URL-encoded form body.
fn encode(fields: &[(&str, &str)]) -> String {
    let mut body = form_urlencoded::Serializer::new(String::new());
    for (name, value) in fields {
        body.append_pair(name, value);
    }
    body.finish()
}

fn statuses(answers: &[Answer]) -> BTreeMap<u16, usize> {
    let mut counts = BTreeMap::new();
    for answer in answers {
        *counts.entry(answer.status).or_insert(0) += 1;
    }
    counts
}

/// Registers `username` from a browser of its own, which stays signed in.
pub(crate) async fn registered(server: &Server, username: &str) -> Browser {
    let owner = Browser::new();
    let answer = owner
        .submit(
            server,
            "/account/register",
            &[("username", username), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(answer.status, 303, "registration: {}", answer.body);
    owner
}

/// The binary on `db` with these `accounts` settings (Rocket's inline table form).
fn start_with_accounts(db: &TestDb, accounts: &str) -> Server {
    Server::start(db.url(), &[("ROCKET_ACCOUNTS", accounts)])
}

/// The binary on `db` waiting up to a minute for a hashing slot: for the bursts that test the
/// throttle's budget, where a slow machine's 503 (every slot busy) would hide what it spent.
fn start_patient(db: &TestDb) -> Server {
    start_with_accounts(db, "{hash_wait_ms=60000}")
}

async fn count(db: &TestDb, sql: &str) -> i64 {
    db.query_text(&format!("select cast(({sql}) as text)"))
        .await
        .parse()
        .expect("a count")
}

async fn thirty_parallel_wrong_passwords_check_at_most_five(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let server = start_patient(&db);
    registered(&server, "victim").await;

    // 30 wrong passwords and the right one, released together.
    let answers = burst(&[&server], "/account/login", 31, |i| {
        let password = if i == 30 { PASSWORD } else { "wrong password" };
        vec![
            ("username".into(), "victim".into()),
            ("password".into(), password.into()),
        ]
    })
    .await;
    let after = Browser::new().sign_in(&server, "victim", PASSWORD).await;

    let counts = statuses(&answers);
    // The right password, checked, gives its place back (a 303); the wrong ones never get
    // more than the budget, even with the right one among them.
    let wrong_checked = counts.get(&401).copied().unwrap_or(0);
    assert!(
        wrong_checked <= 5,
        "{wrong_checked} wrong passwords checked: {counts:?}"
    );
    assert!(counts.get(&303).copied().unwrap_or(0) <= 1, "{counts:?}");
    assert!(
        counts.keys().all(|status| [303, 401, 429].contains(status)),
        "{counts:?}"
    );
    assert!(
        answers
            .iter()
            .filter(|answer| answer.status == 429)
            .all(|answer| answer.retry_after.is_some()),
        "every 429 says when to retry"
    );
    let failures = count(
        &db,
        "select count(*) from throttled_attempts where scope like 'sign-in user+address:%'",
    )
    .await;
    assert!(failures <= 5, "{failures} failures recorded");
    if answers[30].status != 303 {
        // The burst spent the budget: the right password is refused too, without a check.
        assert_eq!(after.status, 429, "{}", after.body);
    }
}

/// The right password among guesses moments apart (as in a burst, where they are checked
/// side by side) gives the guesses no fresh budget: only the failures that were over before
/// the sign-in began are forgiven, so four wrong guesses, the right password and two more
/// wrong ones check five wrong passwords, not six.
async fn a_sign_in_does_not_forgive_the_guesses_racing_it(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let server = start_patient(&db);
    registered(&server, "victim").await;
    let guesser = Browser::new();

    for _ in 0..4 {
        let answer = guesser.sign_in(&server, "victim", "wrong password").await;
        assert_eq!(answer.status, 401, "{}", answer.body);
    }
    let owner = Browser::new().sign_in(&server, "victim", PASSWORD).await;
    assert_eq!(owner.status, 303, "{}", owner.body);
    let fifth = guesser.sign_in(&server, "victim", "wrong password").await;
    let sixth = guesser.sign_in(&server, "victim", "wrong password").await;

    assert_eq!(
        fifth.status, 401,
        "the budget's fifth check: {}",
        fifth.body
    );
    assert_eq!(sixth.status, 429, "no sixth: {}", sixth.body);
}

async fn thirty_parallel_registrations_from_one_address_make_at_most_ten_accounts(
    backend: Backend,
) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let server = start_patient(&db);

    let answers = burst(&[&server], "/account/register", 30, |i| {
        vec![
            ("username".into(), format!("user{i}")),
            ("password".into(), PASSWORD.into()),
        ]
    })
    .await;

    let counts = statuses(&answers);
    let accounts = count(&db, "select count(*) from accounts").await;
    assert!(accounts <= 10, "{accounts} accounts: {counts:?}");
    assert_eq!(
        i64::try_from(counts.get(&303).copied().unwrap_or(0)).expect("a count"),
        accounts,
        "every account made was answered as made, and no other: {counts:?}"
    );
    assert!(
        counts.keys().all(|status| [303, 429].contains(status)),
        "{counts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_postgres_together_check_no_more_than_the_budget() {
    let Some(db) = TestDb::create(Backend::Postgres).await else {
        return;
    };
    let a = start_patient(&db);
    let b = start_patient(&db);
    registered(&a, "victim").await;

    let answers = burst(&[&a, &b], "/account/login", 30, |_| {
        vec![
            ("username".into(), "victim".into()),
            ("password".into(), "wrong password".into()),
        ]
    })
    .await;

    let counts = statuses(&answers);
    assert!(
        counts.get(&401).copied().unwrap_or(0) <= 5,
        "checked on both together: {counts:?}"
    );
    assert_eq!(
        counts.get(&429).copied().unwrap_or(0) + counts.get(&401).copied().unwrap_or(0),
        30
    );
}

/// The resident set of process `pid` (`VmRSS`) or its peak (`VmHWM`), in KiB.
fn memory_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.trim().strip_suffix("kB"))
        .and_then(|kib| kib.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

async fn a_flood_of_sign_ins_keeps_memory_bounded_and_answers_only_401_429_or_503(
    backend: Backend,
) {
    const SLOTS: u64 = 2;
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    // A per-address budget large enough that the flood reaches the hashing.
    let server = start_with_accounts(
        &db,
        "{max_failures_per_address=100000,max_concurrent_hashes=2}",
    );
    // One sign-in first, so the idle figure includes what any first request allocates.
    let warm_up = Browser::new()
        .sign_in(&server, "nobody", "not the password")
        .await;
    assert_eq!(warm_up.status, 401);
    let idle = memory_kib(server.pid(), "VmRSS:");

    let answers = burst(&[&server], "/account/login", 120, |i| {
        vec![
            ("username".into(), format!("nobody{i}")),
            ("password".into(), "not the password".into()),
        ]
    })
    .await;

    let peak = memory_kib(server.pid(), "VmHWM:");
    let counts = statuses(&answers);
    assert!(
        counts.keys().all(|status| [401, 429, 503].contains(status)),
        "{counts:?}"
    );
    assert!(
        answers
            .iter()
            .filter(|answer| answer.status == 503)
            .all(|answer| answer.retry_after.is_some()),
        "every 503 says when to retry"
    );
    // Each hashing thread keeps one 19 MiB block of argon2id working memory (the warm-up's is
    // in `idle` already); allow for the 120 connections' buffers on top.
    let bound = idle + SLOTS * 19 * 1024 + 24 * 1024;
    assert!(
        peak <= bound,
        "peak RSS {peak} KiB, idle {idle} KiB, bound {bound} KiB: {counts:?}"
    );
}

async fn a_password_change_raced_by_sign_ins_with_the_old_password_leaves_it_dead(
    backend: Backend,
) {
    const RACERS: usize = 6;
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let server = start_with_accounts(
        &db,
        "{max_failures_per_user_and_address=100000,max_failures_per_address=100000,\
             max_failures_per_user=100000,hash_wait_ms=20000}",
    );
    let owner = registered(&server, "ada").await;
    let server = Arc::new(server);
    let changed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let barrier = Arc::new(Barrier::new(RACERS + 1));

    // Each racer signs in with the old password again and again until the change is answered,
    // so its sign-ins straddle the change at every point; it keeps its browser.
    let racers: Vec<_> = (0..RACERS)
        .map(|_| {
            let (server, changed, barrier) = (
                Arc::clone(&server),
                Arc::clone(&changed),
                Arc::clone(&barrier),
            );
            tokio::spawn(async move {
                // Signed in with the old password before the change starts, so every racer
                // has a session the change must end, however the loop below is timed.
                let browser = Browser::new();
                let first = browser.sign_in(&server, "ada", PASSWORD).await;
                assert_eq!(first.status, 303, "{first:?}");
                let mut signed_in = 1;
                barrier.wait().await;
                loop {
                    let last_round = changed.load(std::sync::atomic::Ordering::SeqCst);
                    let answer = browser.sign_in(&server, "ada", PASSWORD).await;
                    // The change may end this browser's session while a request uses it
                    // (409), or between showing the form and posting it, whose token was that
                    // session's (403).
                    assert!([303, 401, 403, 409].contains(&answer.status), "{answer:?}");
                    signed_in += usize::from(answer.status == 303);
                    if last_round {
                        return (browser, signed_in);
                    }
                }
            })
        })
        .collect();
    barrier.wait().await;
    let change = owner
        .submit(
            &server,
            "/account/password",
            &[
                ("current_password", PASSWORD),
                ("new_password", NEW_PASSWORD),
            ],
        )
        .await;
    changed.store(true, std::sync::atomic::Ordering::SeqCst);
    let racers = join_all(racers).await;

    assert_eq!(change.status, 303, "the change: {}", change.body);
    let mut sign_ins_before = 0;
    for racer in racers {
        let (browser, signed_in) = racer.expect("a racer");
        sign_ins_before += signed_in;
        assert!(
            !browser.is_signed_in(&server).await,
            "a session from the old password survived the change"
        );
    }
    let old = Browser::new().sign_in(&server, "ada", PASSWORD).await;
    let new = Browser::new().sign_in(&server, "ada", NEW_PASSWORD).await;
    assert_eq!(old.status, 401, "the old password is dead");
    assert_eq!(new.status, 303, "the new password signs in");
    assert!(
        owner.is_signed_in(&server).await,
        "the owner stays signed in"
    );
    assert!(
        sign_ins_before > 0,
        "the racers signed in before the change"
    );
}
