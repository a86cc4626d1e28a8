//! latch: server-side sessions for Rocket, kept in SQLite or PostgreSQL, and a small web app
//! that walks through what sessions are for.
//!
//! The session layer lives in [`session`] and knows nothing of the pages; [`routes`] are the
//! pages and JSON API that use it. [`rocket`] builds the whole app; the binary and the tests
//! both call it.

pub mod config;
pub mod db;
pub mod error;
pub mod name;
pub mod ops;
pub mod routes;
pub mod secret;
pub mod session;

use rocket::figment::Figment;
use rocket::fs::FileServer;
use rocket::{Build, Rocket};
use rocket_dyn_templates::Template;

pub use config::figment;

/// The latch app, configured by `figment` (see [`config::figment`] for the usual one).
pub fn rocket(figment: Figment) -> Rocket<Build> {
    rocket::custom(figment)
        .attach(secret::stage())
        .attach(db::stage())
        .attach(session::purge::fairing())
        .attach(Template::fairing())
        .mount("/", routes::pages())
        .mount("/name", routes::api())
        .mount("/", routes::health())
        .mount("/static", FileServer::from("static"))
        .register("/", error::page_catchers())
        .register("/name", error::json_catchers())
}
