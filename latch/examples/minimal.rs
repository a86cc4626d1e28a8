//! The smallest complete latch app: a page-view counter kept in a server-side session.
//!
//! ```sh
//! cargo run -p latch --example minimal          # then open http://127.0.0.1:8000/
//! ROCKET_PORT=8080 cargo run -p latch --example minimal
//! ```
//!
//! Sessions go to `sqlite://data/latch.db` (latch's default, created on first start). latch reads
//! only its own table of settings: `ROCKET_LATCH='{database_url="sqlite://data/other.db"}'` keeps
//! them elsewhere, `ROCKET_LATCH='{idle_timeout=60}'` changes how they behave (or
//! `[default.latch]` in `Rocket.toml`).

use std::process::ExitCode;

use latch::{Key, Latch, Session, SessionError};
use rocket::{Build, Rocket, get, routes};

/// Where the count lives in the session: a typed key, so every use agrees on `u64`.
const VIEWS: Key<u64> = Key::new("views");

/// Counts this browser's visits. The first visit creates the session (a row, and a cookie
/// holding only its encrypted ID); each later one adds one, atomically.
#[get("/")]
async fn index(session: Session<'_>) -> Result<String, SessionError> {
    let views = session
        .update(&VIEWS, |views| views.unwrap_or(0) + 1)
        .await?;
    Ok(match views {
        1 => "Welcome! This is your first visit.\n".to_owned(),
        n => format!("You have been here {n} times.\n"),
    })
}

fn rocket() -> Rocket<Build> {
    rocket::build()
        .attach(Latch::fairing())
        .mount("/", routes![index])
}

/// Serves until Ctrl-C. A launch that fails (a bad setting, say: latch has logged which) ends
/// with exit status 1, where `#[launch]` would panic.
#[rocket::main]
async fn main() -> ExitCode {
    match rocket().launch().await {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            // Reading the kind marks the error handled, so Rocket does not panic on it.
            let _ = error.kind();
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
