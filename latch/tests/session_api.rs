//! The session API's changes that go beyond one key: `try_update` (a change that may refuse,
//! decided on the stored value even when requests race), `edit` (several keys in one write),
//! and `sign_in_with` (signing in and setting data in the same write).

#![cfg(all(feature = "sqlite", feature = "postgres"))]

mod common;

use futures::future::join_all;
use latch::{Key, Latch, Session, SessionError, SignIn};
use rocket::http::{Cookie, Status};
use rocket::local::asynchronous::Client;
use rocket::{Build, Rocket, get, post, routes};

const CREDITS: Key<u32> = Key::new("credits");
const THEME: Key<String> = Key::new("theme");
const FONT: Key<u32> = Key::new("font");

#[post("/credits/<n>")]
async fn grant(session: Session<'_>, n: u32) -> Result<(), SessionError> {
    session.insert(&CREDITS, &n).await
}

#[post("/spend")]
async fn spend(session: Session<'_>) -> Result<&'static str, SessionError> {
    let spent = session
        .try_update(&CREDITS, |credits| {
            credits.unwrap_or(0).checked_sub(1).ok_or("no credits left")
        })
        .await?;
    Ok(match spent {
        Ok(_) => "spent",
        Err(why) => why,
    })
}

#[post("/prefs")]
async fn prefs(session: Session<'_>) -> Result<(), SessionError> {
    session
        .edit(|data| {
            data.insert(&THEME, &"dark".to_owned())?;
            data.insert(&FONT, &18)
        })
        .await
}

#[post("/prefs-refused")]
async fn prefs_refused(session: Session<'_>) -> Result<(), SessionError> {
    session
        .edit(|data| {
            data.insert(&THEME, &"light".to_owned())?;
            Err(SessionError::InvalidUserId)
        })
        .await
}

#[post("/sign-in")]
async fn sign_in(session: Session<'_>) -> Result<(), SessionError> {
    session
        .sign_in_with(SignIn::new("ada"), |data| {
            data.insert(&THEME, &"ada's".to_owned())
        })
        .await
}

#[post("/sign-in-refused")]
async fn sign_in_refused(session: Session<'_>) -> Result<(), SessionError> {
    session
        .sign_in_with(SignIn::new("ada"), |_| -> Result<(), _> {
            Err(SessionError::InvalidUserId)
        })
        .await
}

#[get("/state")]
async fn state(session: Session<'_>) -> Result<String, SessionError> {
    let user = session.user().await?.map(|user| user.user_id);
    Ok(format!(
        "{:?} {:?} {:?} {:?}",
        session.get(&CREDITS).await?,
        session.get(&THEME).await?,
        session.get(&FONT).await?,
        user
    ))
}

struct App {
    client: Client,
    pool: sqlx::SqlitePool,
    _scratch: common::Scratch,
}

async fn app() -> App {
    let scratch = common::Scratch::sqlite().await;
    let url = format!("{}?mode=rwc", scratch.url);
    // Reads straight from the table: no cached copy to answer for it.
    let client = instance(&url, 0).await;
    let pool = sqlx::SqlitePool::connect(&url).await.expect("a pool");
    App {
        client,
        pool,
        _scratch: scratch,
    }
}

/// One instance of the app on `url`, caching up to `cache` sessions; every instance has the
/// same key, so each opens the others' cookies.
async fn instance(url: &str, cache: usize) -> Client {
    let figment = rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge(("secret_key", "hPRYyVRiMyxpw5sBB1XeCMN1kFsDCqKvBi2QJxBVHQk="))
        .merge(("latch.database_url", url))
        .merge(("latch.cache_capacity", cache))
        .merge(("latch.postgres_cache", true));
    let rocket: Rocket<Build> = rocket::custom(figment).attach(Latch::fairing()).mount(
        "/",
        routes![
            grant,
            spend,
            prefs,
            prefs_refused,
            sign_in,
            sign_in_refused,
            state
        ],
    );
    Client::untracked(rocket).await.expect("the app launches")
}

async fn post_on(client: &Client, path: &str, cookie: &str) -> String {
    client
        .post(path.to_owned())
        .cookie(Cookie::new("session", cookie.to_owned()))
        .dispatch()
        .await
        .into_string()
        .await
        .unwrap_or_default()
}

async fn state_on(client: &Client, cookie: &str) -> String {
    client
        .get("/state")
        .cookie(Cookie::new("session", cookie.to_owned()))
        .dispatch()
        .await
        .into_string()
        .await
        .unwrap_or_default()
}

/// Two Postgres instances, each caching the session: a refusal on one is never decided on a
/// copy the other has changed since, and spends released at once on both take exactly the
/// credits there are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_spend_exactly_the_credits_there_are() {
    let Some(scratch) = common::Scratch::postgres().await else {
        return;
    };
    let outcome = tokio::spawn({
        let url = scratch.url.clone();
        async move {
            let (a, b) = (instance(&url, 100).await, instance(&url, 100).await);
            let response = b.post("/credits/0").dispatch().await;
            let cookie = response
                .cookies()
                .get("session")
                .map(|c| c.value().to_owned())
                .expect("a session");
            // A caches the session with no credits; B then grants ten.
            assert_eq!(state_on(&a, &cookie).await, "Some(0) None None None");
            post_on(&b, "/credits/10", &cookie).await;

            let spends =
                (0..24).map(|i| post_on(if i % 2 == 0 { &a } else { &b }, "/spend", &cookie));
            let answers = join_all(spends).await;

            let spent = answers.iter().filter(|body| *body == "spent").count();
            let refused = answers
                .iter()
                .filter(|body| *body == "no credits left")
                .count();
            assert_eq!((spent, refused), (10, 14), "{answers:?}");
            assert_eq!(state_on(&a, &cookie).await, "Some(0) None None None");
        }
    })
    .await;
    scratch.finish().await;
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
}

impl App {
    /// A POST with `cookie`; the new cookie if the response set one.
    async fn post(&self, path: &str, cookie: Option<&str>) -> (Status, String, Option<String>) {
        let mut request = self.client.post(path.to_owned());
        if let Some(cookie) = cookie {
            request = request.cookie(Cookie::new("session", cookie.to_owned()));
        }
        let response = request.dispatch().await;
        let set = response
            .cookies()
            .get("session")
            .map(|c| c.value().to_owned());
        (
            response.status(),
            response.into_string().await.unwrap_or_default(),
            set,
        )
    }

    async fn state(&self, cookie: &str) -> String {
        self.client
            .get("/state")
            .cookie(Cookie::new("session", cookie.to_owned()))
            .dispatch()
            .await
            .into_string()
            .await
            .unwrap_or_default()
    }

    async fn versions(&self) -> Vec<i64> {
        sqlx::query_scalar("select version from sessions")
            .fetch_all(&self.pool)
            .await
            .expect("the versions")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_spends_take_exactly_the_credits_there_are_and_refusals_write_nothing() {
    let app = app().await;
    let (status, _, cookie) = app.post("/credits/10", None).await;
    assert_eq!(status, Status::Ok);
    let cookie = cookie.expect("a session");
    let before = app.versions().await;

    // 25 spends released together on one session.
    let answers = join_all((0..25).map(|_| app.post("/spend", Some(&cookie)))).await;

    let spent = answers
        .iter()
        .filter(|(_, body, _)| body == "spent")
        .count();
    let refused = answers
        .iter()
        .filter(|(_, body, _)| body == "no credits left")
        .count();
    assert_eq!((spent, refused), (10, 15), "{answers:?}");
    assert_eq!(app.state(&cookie).await, "Some(0) None None None");
    // One write per spend, none for a refusal.
    assert_eq!(app.versions().await, [before[0] + 10]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edit_changes_several_keys_in_one_write_or_none() {
    let app = app().await;
    let (_, _, cookie) = app.post("/credits/1", None).await;
    let cookie = cookie.expect("a session");
    let before = app.versions().await;

    let (status, _, _) = app.post("/prefs", Some(&cookie)).await;
    assert_eq!(status, Status::Ok);
    assert_eq!(app.versions().await, [before[0] + 1]);
    assert_eq!(
        app.state(&cookie).await,
        r#"Some(1) Some("dark") Some(18) None"#
    );

    let (status, _, _) = app.post("/prefs-refused", Some(&cookie)).await;
    // The handler's own error (a programming error here: 500) stores nothing.
    assert_eq!(status, Status::InternalServerError);
    assert_eq!(app.versions().await, [before[0] + 1]);
    assert_eq!(
        app.state(&cookie).await,
        r#"Some(1) Some("dark") Some(18) None"#
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_with_sets_the_data_in_the_same_write_or_changes_nothing() {
    let app = app().await;
    let (_, _, cookie) = app.post("/credits/3", None).await;
    let cookie = cookie.expect("a session");

    let (status, _, _) = app.post("/sign-in-refused", Some(&cookie)).await;
    // The handler's own error (a programming error here: 500) stores nothing.
    assert_eq!(status, Status::InternalServerError);
    assert_eq!(app.state(&cookie).await, "Some(3) None None None");

    let (status, _, signed_in) = app.post("/sign-in", Some(&cookie)).await;
    assert_eq!(status, Status::Ok);
    let signed_in = signed_in.expect("a new cookie");
    assert_ne!(signed_in, cookie);
    // The new row was written once, with the user and the data together.
    let rows: Vec<(i64, Option<String>, String)> =
        sqlx::query_as("select version, user_id, data from sessions")
            .fetch_all(&app.pool)
            .await
            .expect("the rows");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].1.as_deref(), Some("ada"));
    assert!(rows[0].2.contains("ada's"), "{rows:?}");
    assert_eq!(
        app.state(&signed_in).await,
        r#"Some(3) Some("ada's") None Some("ada")"#
    );
    // The old ID is dead.
    assert_eq!(app.state(&cookie).await, "None None None None");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_with_on_a_new_visitor_starts_with_the_data() {
    let app = app().await;

    let (status, _, cookie) = app.post("/sign-in", None).await;

    assert_eq!(status, Status::Ok);
    let cookie = cookie.expect("a session");
    assert_eq!(
        app.state(&cookie).await,
        r#"None Some("ada's") None Some("ada")"#
    );
    assert_eq!(app.versions().await, [0]);
}
