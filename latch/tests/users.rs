//! Sessions that know their user, through the request guard, on both backends: sign-in rotates
//! the ID, a user's devices are listed, and revoking one (or all others, or bumping the auth
//! epoch) signs those browsers out on their very next request, on another instance too.

#![cfg(all(feature = "sqlite", feature = "postgres"))]

mod common;

use common::Scratch;
use latch::{ClientInfo, Handle, Key, Latch, Session, SessionError, SignIn};
use rocket::figment::Figment;
use rocket::http::{Cookie, Status};
use rocket::local::asynchronous::Client;
use rocket::{Build, Rocket, get, post, routes};

const VIEWS: Key<u64> = Key::new("views");
/// The instances' shared `secret_key` (for these tests only).
const SECRET_KEY: &str =
    "s1iNl+c2mmhGsZXmoNDHcD3/2a9lasPzRtdlRTeW4yBP1OMqKRbrWVxBP4YnMlMVKV1ZiXWJrdudnS6ZtDlp9A==";

#[get("/count")]
async fn count(session: Session<'_>) -> Result<String, SessionError> {
    let views = session
        .update(&VIEWS, |views| views.unwrap_or(0) + 1)
        .await?;
    Ok(views.to_string())
}

#[get("/me")]
async fn me(session: Session<'_>) -> Result<String, SessionError> {
    let user = session.user().await?;
    Ok(user.map_or_else(|| "anonymous".to_owned(), |user| user.user_id))
}

#[post("/sign-in/<user>?<clear>")]
async fn sign_in(
    session: Session<'_>,
    client: ClientInfo,
    user: &str,
    clear: bool,
) -> Result<(), SessionError> {
    let sign_in = SignIn::new(user).client(client);
    let sign_in = if clear { sign_in.clear_data() } else { sign_in };
    session.sign_in(sign_in).await
}

#[post("/sign-out")]
async fn sign_out(session: Session<'_>) -> Result<(), SessionError> {
    session.sign_out().await
}

/// A line per device: its handle, `current` or `other`, and its user agent, tab-separated.
#[get("/devices")]
async fn devices(session: Session<'_>) -> Result<String, SessionError> {
    let devices = session.devices().await?;
    Ok(devices
        .into_iter()
        .map(|device| {
            let which = if device.current { "current" } else { "other" };
            let agent = device.client.user_agent.unwrap_or_default();
            format!("{}\t{which}\t{agent}\n", device.handle.encode())
        })
        .collect())
}

#[post("/revoke/<handle>")]
async fn revoke(session: Session<'_>, handle: &str) -> Result<String, SessionError> {
    let Some(handle) = Handle::parse(handle) else {
        return Ok("bad handle".to_owned());
    };
    Ok(session.revoke_device(&handle).await?.to_string())
}

#[post("/revoke-others")]
async fn revoke_others(session: Session<'_>) -> Result<String, SessionError> {
    Ok(session.revoke_other_devices().await?.to_string())
}

#[post("/bump")]
async fn bump(session: Session<'_>) -> Result<String, SessionError> {
    Ok(session.bump_auth_epoch().await?.to_string())
}

fn app(database_url: &str, cache_capacity: usize) -> Rocket<Build> {
    let mut figment: Figment = rocket::Config::figment()
        .merge(("log_level", "off"))
        // One key for every instance, as in production: each can open the others' cookies.
        .merge(("secret_key", SECRET_KEY))
        .merge(("latch.database_url", database_url))
        .merge(("latch.cache_capacity", cache_capacity))
        .merge(("latch.postgres_cache", true))
        // A table of another name (the walkthrough's tests cover `sessions`), on Postgres in a
        // schema of its own: the instances hear each other on that table's channel.
        .merge(("latch.table", "app_sessions"));
    if database_url.starts_with("postgres") {
        figment = figment.merge(("latch.schema", "auth"));
    }
    rocket::custom(figment).attach(Latch::fairing()).mount(
        "/",
        routes![
            count,
            me,
            sign_in,
            sign_out,
            devices,
            revoke,
            revoke_others,
            bump
        ],
    )
}

/// A browser on an instance of its own. Each instance caches sessions on Postgres, where
/// instances hear of each other's changes; a SQLite file with several instances must not.
async fn client(database_url: &str) -> Client {
    let cache = if database_url.starts_with("postgres") {
        100
    } else {
        0
    };
    Client::tracked(app(database_url, cache))
        .await
        .expect("the app launches")
}

async fn text(client: &Client, path: &str) -> String {
    let response = client.get(path).dispatch().await;
    assert_eq!(response.status(), Status::Ok, "GET {path}");
    response.into_string().await.unwrap_or_default()
}

async fn post(client: &Client, path: &str) -> (Status, String) {
    let response = client
        .post(path)
        .header(rocket::http::Header::new("User-Agent", "TestBrowser/1.0"))
        .dispatch()
        .await;
    let status = response.status();
    (status, response.into_string().await.unwrap_or_default())
}

async fn devices_of(client: &Client) -> Vec<[String; 3]> {
    text(client, "/devices")
        .await
        .lines()
        .map(|line| {
            let mut fields = line.splitn(3, '\t').map(str::to_owned);
            [(); 3].map(|()| fields.next().unwrap_or_default())
        })
        .collect()
}

/// What `/me` says to another browser, on another instance, that presents `cookie`.
async fn replay(database_url: &str, cookie: &str) -> String {
    let attacker = Client::untracked(app(database_url, 0))
        .await
        .expect("the app launches");
    let response = attacker
        .get("/me")
        .cookie(Cookie::new("session", cookie.to_owned()))
        .dispatch()
        .await;
    response.into_string().await.unwrap_or_default()
}

/// The sealed session cookie the browser holds now.
fn session_cookie(client: &Client) -> String {
    client
        .cookies()
        .get("session")
        .expect("a session cookie")
        .value()
        .to_owned()
}

/// Runs `check` with a fresh database of each backend (Postgres when a server is configured).
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let scratch = super::Scratch::sqlite().await;
                super::$name(&format!("{}?mode=rwc", scratch.url)).await;
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some(scratch) = super::Scratch::postgres().await else { return };
                let outcome = tokio::spawn({
                    let url = scratch.url.clone();
                    async move { super::$name(&url).await }
                })
                .await;
                scratch.finish().await;
                if let Err(error) = outcome {
                    std::panic::resume_unwind(error.into_panic());
                }
            })*
        }
    };
}

on_both_backends!(
    sign_in_rotates_the_id_and_keeps_or_clears_the_data,
    sign_out_leaves_a_fresh_anonymous_session,
    revoking_a_device_signs_that_browser_out_on_its_next_request,
    revoking_the_others_and_bumping_the_epoch_keep_only_this_session,
);

async fn sign_in_rotates_the_id_and_keeps_or_clears_the_data(url: &str) {
    let browser = client(url).await;
    assert_eq!(text(&browser, "/count").await, "1");
    let anonymous_cookie = session_cookie(&browser);

    assert_eq!(post(&browser, "/sign-in/ada").await.0, Status::Ok);

    assert_ne!(session_cookie(&browser), anonymous_cookie);
    assert_eq!(text(&browser, "/me").await, "ada");
    assert_eq!(text(&browser, "/count").await, "2", "the data came along");
    // The ID from before the sign-in is dead.
    assert_eq!(replay(url, &session_cookie(&browser)).await, "ada");
    assert_eq!(replay(url, &anonymous_cookie).await, "anonymous");

    // Signing in again (as someone else, clearing the data) rotates again.
    let ada_cookie = session_cookie(&browser);
    assert_eq!(post(&browser, "/sign-in/grace?clear").await.0, Status::Ok);
    assert_ne!(session_cookie(&browser), ada_cookie);
    assert_eq!(text(&browser, "/me").await, "grace");
    assert_eq!(text(&browser, "/count").await, "1", "the data was cleared");

    // Without any session, a signed-in one starts.
    let fresh = client(url).await;
    assert_eq!(post(&fresh, "/sign-in/ada").await.0, Status::Ok);
    assert_eq!(text(&fresh, "/me").await, "ada");
    // The agent was recorded with the session.
    let listed = devices_of(&fresh).await;
    assert!(
        listed
            .iter()
            .any(|[_, which, agent]| which == "current" && agent == "TestBrowser/1.0"),
        "{listed:?}"
    );
}

async fn sign_out_leaves_a_fresh_anonymous_session(url: &str) {
    let browser = client(url).await;
    text(&browser, "/count").await;
    post(&browser, "/sign-in/ada").await;
    let signed_in_cookie = session_cookie(&browser);

    assert_eq!(post(&browser, "/sign-out").await.0, Status::Ok);

    assert_ne!(session_cookie(&browser), signed_in_cookie);
    assert_eq!(text(&browser, "/me").await, "anonymous");
    assert_eq!(text(&browser, "/count").await, "1", "nothing carried over");
    assert_eq!(replay(url, &signed_in_cookie).await, "anonymous");
    // Signed out, there are no devices to list.
    let listing = browser.get("/devices").dispatch().await;
    assert_eq!(listing.status(), Status::Unauthorized);
}

async fn revoking_a_device_signs_that_browser_out_on_its_next_request(url: &str) {
    // Two instances of the app on one database, each with its own cache.
    let (laptop, phone) = (client(url).await, client(url).await);
    let mallory = client(url).await;
    post(&laptop, "/sign-in/ada").await;
    post(&phone, "/sign-in/ada").await;
    post(&mallory, "/sign-in/mallory").await;
    assert_eq!(text(&phone, "/me").await, "ada");

    let listed = devices_of(&laptop).await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    let [phone_handle, _, _] = listed
        .iter()
        .find(|[_, which, _]| which == "other")
        .expect("the phone")
        .clone();
    assert_eq!(
        listed
            .iter()
            .filter(|[_, which, _]| which == "current")
            .count(),
        1
    );

    // Another user's handle matches nothing.
    assert_eq!(
        post(&mallory, &format!("/revoke/{phone_handle}")).await.1,
        "false"
    );
    assert_eq!(text(&phone, "/me").await, "ada");

    assert_eq!(
        post(&laptop, &format!("/revoke/{phone_handle}")).await.1,
        "true"
    );

    assert_eq!(text(&phone, "/me").await, "anonymous");
    assert_eq!(text(&laptop, "/me").await, "ada");
    assert_eq!(devices_of(&laptop).await.len(), 1);
}

async fn revoking_the_others_and_bumping_the_epoch_keep_only_this_session(url: &str) {
    let [this, second, third] = [client(url).await, client(url).await, client(url).await];
    for browser in [&this, &second, &third] {
        post(browser, "/sign-in/ada").await;
        assert_eq!(text(browser, "/me").await, "ada");
    }

    assert_eq!(post(&this, "/revoke-others").await.1, "2");

    assert_eq!(text(&second, "/me").await, "anonymous");
    assert_eq!(text(&third, "/me").await, "anonymous");
    assert_eq!(text(&this, "/me").await, "ada");

    // A password change: every other session ends, this one stays.
    post(&second, "/sign-in/ada").await;
    post(&third, "/sign-in/ada").await;
    assert_eq!(text(&third, "/me").await, "ada");
    assert_eq!(post(&this, "/bump").await.1, "2");
    assert_eq!(text(&second, "/me").await, "anonymous");
    assert_eq!(text(&third, "/me").await, "anonymous");
    assert_eq!(text(&this, "/me").await, "ada");
    // Signing in after the bump works as before.
    post(&second, "/sign-in/ada").await;
    assert_eq!(text(&second, "/me").await, "ada");
}
