//! The benchmark's ceiling for latch: the walkthrough's session pages on Rocket, with no store
//! at all. A session's data lives in the private (AES-GCM) cookie `session` itself, so each
//! request pays for opening and sealing a cookie, as with latch, but never for a database.
//! bench/run.sh starts it as it starts latch; it ignores DATABASE_URL.

mod pages;

use rocket::figment::providers::Env;
use rocket::figment::{Figment, Profile};
use rocket::http::{Cookie, CookieJar, SameSite, Status};
use rocket::time::{Duration, OffsetDateTime};
use rocket::{Config, get, routes};
use serde::{Deserialize, Serialize};
use serde_json::json;

use pages::{Page, Templates};

const COOKIE: &str = "session";
/// latch's idle timeout: its session cookie lasts as long.
const MAX_AGE: Duration = Duration::seconds(3600);
/// latch's limit on a name, in characters.
const MAX_NAME_CHARS: usize = 64;

/// Everything the pages keep in a session.
#[derive(Default, Serialize, Deserialize)]
struct Data {
    name: Option<String>,
    page_views: u64,
}

/// The session's data, if the request carries a cookie this server sealed; anything else
/// (no cookie, another key, not our JSON) is no session.
fn open(cookies: &CookieJar<'_>) -> Option<Data> {
    let cookie = cookies.get_private(COOKIE)?;
    serde_json::from_str(cookie.value()).ok()
}

/// Seals `data` into the cookie with latch's attributes, but for Secure (plain HTTP here).
fn seal(cookies: &CookieJar<'_>, data: &Data) {
    let Ok(value) = serde_json::to_string(data) else {
        return; // Two fields that always serialize: cannot happen.
    };
    let cookie = Cookie::build((COOKIE, value))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(false)
        .max_age(MAX_AGE)
        .expires(OffsetDateTime::now_utc() + MAX_AGE);
    cookies.add_private(cookie);
}

#[get("/healthz")]
fn healthz() -> &'static str {
    "ok"
}

#[get("/login")]
fn login() -> Page {
    Page::new("login", json!({ "max_chars": MAX_NAME_CHARS }))
}

/// Counts this session's visits (the first one starts the session).
#[get("/")]
fn counter(cookies: &CookieJar<'_>) -> Page {
    let mut data = open(cookies).unwrap_or_default();
    data.page_views = data.page_views.saturating_add(1);
    seal(cookies, &data);
    Page::new(
        "index",
        json!({ "views": data.page_views, "name": data.name }),
    )
}

/// Shows the stored name; reading never starts a session.
#[get("/user")]
fn show_user(cookies: &CookieJar<'_>) -> Page {
    let name = open(cookies).and_then(|data| data.name);
    Page::new("user", json!({ "name": name }))
}

/// Stores a name in the session, starting one if there is none.
#[get("/user/<name>")]
fn set_user(name: &str, cookies: &CookieJar<'_>) -> Page {
    if name.chars().count() > MAX_NAME_CHARS {
        let message = format!("A name has at most {MAX_NAME_CHARS} characters.");
        return Page::error(Status::UnprocessableEntity, &message);
    }
    let mut data = open(cookies).unwrap_or_default();
    data.name = Some(name.to_owned());
    seal(cookies, &data);
    Page::new("user_set", json!({ "name": name }))
}

#[rocket::main]
async fn main() -> std::process::ExitCode {
    let templates = match Templates::load() {
        Ok(templates) => templates,
        Err(error) => {
            eprintln!("peer-ceiling: templates: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    // Rocket's own figment without its Rocket.toml: run from the repository, Rocket would find
    // latch's in a parent folder. ROCKET_PROFILE picks the profile; other variables, such as
    // DATABASE_URL, never reach Rocket, and ROCKET_* keys it does not know it ignores.
    let figment = Figment::from(Config::default())
        .merge(Env::prefixed("ROCKET_").ignore(&["PROFILE"]).global())
        .select(Profile::from_env_or(
            "ROCKET_PROFILE",
            Config::DEFAULT_PROFILE,
        ));
    let launched = rocket::custom(figment)
        .manage(templates)
        .mount("/", routes![healthz, login, counter, show_user, set_user])
        .launch()
        .await;
    match launched {
        Ok(_) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("peer-ceiling: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
