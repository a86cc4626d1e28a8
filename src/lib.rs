//! latch: server-side sessions for Rocket, kept in SQLite or PostgreSQL, and a small web app
//! that walks through what sessions are for.
//!
//! The session layer lives in [`session`] and knows nothing of the pages; [`routes`] are the
//! pages and JSON API that use it. [`rocket`] builds the whole app; the binary and the tests
//! both call it, and [`launch::serve`] runs it from the binary.

pub mod config;
pub mod db;
pub mod error;
pub mod headers;
pub mod launch;
pub mod name;
pub mod ops;
pub mod routes;
pub mod secret;
pub mod session;
pub mod templates;

use rocket::figment::Figment;
use rocket::{Build, Rocket};

pub use config::figment;

/// The latch app, configured by `figment` (see [`config::figment`] for the usual one).
pub fn rocket(figment: Figment) -> Rocket<Build> {
    rocket::custom(figment)
        .attach(secret::stage())
        .attach(db::stage())
        .attach(session::purge::fairing())
        .attach(session::no_store::NoStore)
        .attach(headers::fairing())
        .attach(headers::no_default_shield())
        .attach(templates::stage())
        .mount("/", routes::pages())
        .mount("/name", routes::api())
        .mount("/", routes::health())
        .mount("/", templates::routes())
        .register("/", error::page_catchers())
        .register("/name", error::json_catchers())
}
