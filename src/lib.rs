//! The latch walkthrough: a small web app that shows what server-side sessions are for, built on
//! the `latch` session library (in `latch/`).
//!
//! [`routes`] are the pages and JSON API; they take the library's `Session` and `CsrfToken`
//! guards and know nothing of how sessions are stored. [`rocket()`] builds the whole app; the
//! binary and the tests both call it, and [`launch::serve`] runs it from the binary.

pub mod accounts;
pub mod clock;
pub mod config;
pub mod error;
pub mod flash;
pub mod headers;
pub mod launch;
pub mod name;
pub mod ops;
pub mod routes;
pub mod secret;
pub mod signed_in;
pub mod templates;
pub mod user_agent;

use rocket::figment::Figment;
use rocket::{Build, Rocket};

pub use config::figment;

/// The walkthrough app, configured by `figment` (see [`config::figment`] for the usual one).
pub fn rocket(figment: Figment) -> Rocket<Build> {
    rocket::custom(figment)
        .attach(secret::stage())
        .attach(latch::Latch::with_config_from(config::latch_config))
        .attach(accounts::stage())
        .attach(headers::fairing())
        .attach(headers::no_default_shield())
        .attach(templates::stage())
        .mount("/", routes::pages())
        .mount("/account", routes::account())
        .mount("/", routes::inspect())
        .mount("/name", routes::api())
        .mount("/", routes::health())
        .mount("/", templates::routes())
        .register("/", error::page_catchers())
        .register("/name", error::json_catchers())
}
