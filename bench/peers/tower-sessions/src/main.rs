//! A benchmark peer of latch: the walkthrough's session pages on axum + tower-sessions, with the
//! sqlx store DATABASE_URL names. bench/run.sh starts it as it starts latch: it listens on
//! ROCKET_ADDRESS:ROCKET_PORT and ignores the other ROCKET_* variables.

mod pages;
mod store;

use std::net::IpAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tera::Context;
use tower_sessions::cookie::{SameSite, time};
use tower_sessions::{Expiry, Session, SessionManagerLayer, session};

use pages::Page;
use store::Store;

const NAME: &str = "name";
const PAGE_VIEWS: &str = "page_views";
/// latch's limit on a name, in characters.
const MAX_NAME_CHARS: usize = 64;

#[tokio::main]
async fn main() {
    if let Err(error) = run().await {
        eprintln!("peer-tower-sessions: {error}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("DATABASE_URL").map_err(|_| "DATABASE_URL is not set")?;
    let address: IpAddr = env_or("ROCKET_ADDRESS", "127.0.0.1").parse()?;
    let port: u16 = env_or("ROCKET_PORT", "8000").parse()?;
    pages::load()?;

    let store = Store::connect(&url).await?;
    store.migrate().await?;
    // latch purges expired sessions every 60 s by default; this is the store's counterpart.
    tokio::spawn(store.clone().delete_expired_every(Duration::from_secs(60)));

    // latch's cookie, but for Secure: the benchmark is plain HTTP.
    let sessions = SessionManagerLayer::new(store.clone())
        .with_name("session")
        .with_expiry(Expiry::OnInactivity(time::Duration::seconds(3600)))
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(false)
        .with_path("/");
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/login", get(login))
        .route("/", get(counter))
        .route("/user", get(show_user))
        .route("/user/{name}", get(set_user))
        .layer(sessions)
        .layer(middleware::map_response(save_failure_as_503))
        .with_state(store);

    let listener = tokio::net::TcpListener::bind((address, port)).await?;
    axum::serve(listener, app).await?;
    Ok(())
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

async fn healthz(State(store): State<Store>) -> (StatusCode, &'static str) {
    match store.ping().await {
        Ok(()) => (StatusCode::OK, "ok"),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "database unavailable"),
    }
}

async fn login() -> Page {
    let mut context = Context::new();
    context.insert("max_chars", &MAX_NAME_CHARS);
    Page::new("login", context)
}

/// Counts this session's visits (the first one creates the session).
async fn counter(session: Session) -> Result<Page, Unavailable> {
    let views = session
        .get::<u64>(PAGE_VIEWS)
        .await?
        .unwrap_or(0)
        .saturating_add(1);
    session.insert(PAGE_VIEWS, views).await?;
    let mut context = Context::new();
    context.insert("views", &views);
    context.insert("name", &session.get::<String>(NAME).await?);
    Ok(Page::new("index", context))
}

/// Shows the stored name; reading never creates a session.
async fn show_user(session: Session) -> Result<Page, Unavailable> {
    let mut context = Context::new();
    context.insert("name", &session.get::<String>(NAME).await?);
    Ok(Page::new("user", context))
}

/// Stores a name in the session, creating one if there is none.
async fn set_user(session: Session, Path(name): Path<String>) -> Result<Page, Unavailable> {
    if name.chars().count() > MAX_NAME_CHARS {
        let message = format!("A name has at most {MAX_NAME_CHARS} characters.");
        return Ok(Page::error(StatusCode::UNPROCESSABLE_ENTITY, &message));
    }
    session.insert(NAME, &name).await?;
    let mut context = Context::new();
    context.insert("name", &name);
    Ok(Page::new("user_set", context))
}

/// The store failed (or a stored value would not decode): a 503 page. tower-sessions then
/// skips saving the session, as it does for any 5xx.
struct Unavailable(session::Error);

impl From<session::Error> for Unavailable {
    fn from(error: session::Error) -> Self {
        Self(error)
    }
}

impl IntoResponse for Unavailable {
    fn into_response(self) -> Response {
        eprintln!("session store: {}", self.0);
        unavailable()
    }
}

/// A save that fails after the handler is answered by tower-sessions itself, with an empty 500
/// (no content type, unlike every response of ours): the same 503 page instead.
async fn save_failure_as_503(response: Response) -> Response {
    let theirs = response.status() == StatusCode::INTERNAL_SERVER_ERROR
        && !response.headers().contains_key(header::CONTENT_TYPE);
    if theirs {
        eprintln!("session store: saving the session failed");
        unavailable()
    } else {
        response
    }
}

fn unavailable() -> Response {
    let message = "The session store did not answer.";
    Page::error(StatusCode::SERVICE_UNAVAILABLE, message).into_response()
}
